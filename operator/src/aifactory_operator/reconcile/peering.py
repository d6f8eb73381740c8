"""Whether this replica is the one kopf lets work, from the ClusterKopfPeering record (pure).

kopf pauses a replica while an alive peer has a higher priority, and a paused replica stops
watching altogether, so its indexes go stale. Its webhook must then not judge anything from them.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any


def is_active(own_priority: int | None, peers: Mapping[str, Any], now: datetime) -> bool:
    """True when no alive peer outranks `own_priority` (None: no peering, always active). A peer
    is alive until `lifetime` seconds after it was last seen; a tie pauses neither, as in kopf."""
    if own_priority is None:
        return True
    for peer in peers.values():
        if not isinstance(peer, Mapping):
            continue
        seen = _parse(peer.get("lastseen"))
        lifetime = timedelta(seconds=float(peer.get("lifetime") or 60))
        alive = seen is not None and seen + lifetime > now
        if alive and int(peer.get("priority") or 0) > own_priority:
            return False
    return True


def _parse(stamp: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
