"""GPU quota with borrowing and lending between the tenants of one factory (pure).

Every tenant has, per GPU product, a nominal share (`gpus`), a `borrowingLimit` (how far above its
share it may go on quota others leave idle; 0 by default) and a `lendingLimit` (how much of its own
idle share others may borrow; all of it by default). The tenants of a factory form one cohort.

The rules, per product:
- a tenant may always use its nominal share;
- above it, a tenant borrows, and what all tenants borrow together never exceeds what the lenders
  leave idle and lendable at the moment of the decision; each tenant's own borrowing never exceeds
  its borrowingLimit.

Lending does not give a share away: a lender whose share is in use by borrowers is still entitled
to it, and its jobs wait for the capacity (or reclaim it, when the factory's preemption allows)
rather than for quota. A share is idle only while its tenant neither uses it nor has queued work
that wants it (`wanted`): otherwise borrowers would take back, on the tick a reclaim freed it, the
capacity the lender reclaimed.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

Key = tuple[str, str]  # (tenant, product)


@dataclass(frozen=True)
class Share:
    nominal: int
    borrowing_limit: int = 0
    lending_limit: int | None = None  # None: all of the nominal share

    @property
    def lendable(self) -> int:
        return self.nominal if self.lending_limit is None else min(self.lending_limit, self.nominal)


@dataclass
class QuotaBook:
    shares: dict[Key, Share]
    used: dict[Key, int] = field(default_factory=dict)
    wanted: dict[Key, int] = field(default_factory=dict)  # GPUs the tenant's queued work asks for

    @classmethod
    def plain(cls, left: Mapping[Key, int]) -> "QuotaBook":
        """Quotas without borrowing: `left` is what each tenant may still take."""
        return cls({key: Share(gpus) for key, gpus in left.items()})

    def copy(self) -> "QuotaBook":
        return QuotaBook(dict(self.shares), dict(self.used), dict(self.wanted))

    def share(self, key: Key) -> Share:
        return self.shares.get(key, Share(0))

    def left(self, key: Key) -> int:
        """Nominal share less use; below 0 while the tenant borrows."""
        return self.share(key).nominal - self.used.get(key, 0)

    def borrowed(self, key: Key) -> int:
        return max(0, -self.left(key))

    def idle_lendable(self, key: Key) -> int:
        """Unused, not wanted by the tenant's own queue, and within its lending limit."""
        return min(self.share(key).lendable, max(0, self.left(key) - self.wanted.get(key, 0)))

    def cohort_free(self, product: str, excluding: str = "") -> int:
        """What tenants other than `excluding` leave idle and lendable, less what is borrowed now."""
        keys = self._keys(product)
        lendable = sum(self.idle_lendable(k) for k in keys if k[0] != excluding)
        return lendable - sum(self.borrowed(k) for k in keys)

    def room(self, key: Key, borrow: bool = True) -> int:
        """The most GPUs the tenant may take now: its idle share, then what it may borrow (unless
        the work must not borrow: a job that may not be preempted runs on nominal quota only)."""
        share, left = self.share(key), self.left(key)
        if not share.borrowing_limit or not borrow:
            return max(0, left)
        may_borrow = share.borrowing_limit - self.borrowed(key)
        borrowable = max(0, min(may_borrow, self.cohort_free(key[1], excluding=key[0])))
        return max(0, left) + borrowable

    def take(self, key: Key, gpus: int) -> None:
        self.used[key] = self.used.get(key, 0) + gpus
        if key in self.wanted:
            self.wanted[key] = max(0, self.wanted[key] - gpus)

    def give_back(self, key: Key, gpus: int) -> None:
        """What a preempted gang held returns to its tenant."""
        self.used[key] = self.used.get(key, 0) - gpus

    def want(self, key: Key, gpus: int) -> None:
        self.wanted[key] = self.wanted.get(key, 0) + gpus

    def explain(self, key: Key, gpus: int, borrow: bool = True) -> str:
        """Why a job of `gpus` waits for quota."""
        tenant, product = key
        share, left = self.share(key), max(0, self.left(key))
        text = f"waiting for quota: tenant '{tenant}' has {left} {product} GPUs left"
        if share.borrowing_limit and borrow:
            text += f", may borrow {self.room(key) - left} more from other tenants' idle quota,"
        elif share.borrowing_limit:
            text += " (a job that may not be preempted does not borrow)"
        return text + f" and the job needs {gpus}"

    def _keys(self, product: str) -> list[Key]:
        return [k for k in self.shares.keys() | self.used.keys() if k[1] == product]
