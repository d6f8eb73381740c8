"""Amounts of node resources as exact integers, so accounting adds and compares without rounding (pure).

Every amount is held in thousandths of the resource's unit: CPU in millicores, memory in
thousandths of a byte, GPUs and other extended resources in thousandths of a device. One scale for
all means a ledger never asks which unit a resource uses, and "100m" and "0.1" compare equal.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes.utils.quantity import parse_quantity

Amounts = dict[str, int]
# Tuples of (resource, amount), sorted: hashable and cheap to keep in frozen index entries.
FrozenAmounts = tuple[tuple[str, int], ...]
SCALE = 1000


def parse_amounts(quantities: Mapping[str, Any]) -> Amounts:
    """Kubernetes quantities ("2", "500m", "16Gi") as scaled integers; an unreadable one counts as 0."""
    amounts: Amounts = {}
    for name, quantity in quantities.items():
        try:
            amounts[name] = int(parse_quantity(str(quantity)) * SCALE)  # type: ignore[no-untyped-call]
        except ValueError:
            amounts[name] = 0
    return amounts


def pod_requests(pod_spec: Mapping[str, Any]) -> Amounts:
    """What the scheduler reserves for a pod: the sum of its containers' requests (a limit alone
    counts as the request), or the largest init container's when that is more, plus the overhead."""
    total = _sum_amounts(_container_requests(c) for c in pod_spec.get("containers") or [])
    for init in pod_spec.get("initContainers") or []:
        for name, amount in _container_requests(init).items():
            total[name] = max(total.get(name, 0), amount)
    for name, amount in parse_amounts(pod_spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + amount
    return {name: amount for name, amount in total.items() if amount}


def _container_requests(container: Mapping[str, Any]) -> Amounts:
    resources = container.get("resources") or {}
    return {**parse_amounts(resources.get("limits") or {}), **parse_amounts(resources.get("requests") or {})}


def _sum_amounts(parts: Iterable[Amounts]) -> Amounts:
    total: Amounts = {}
    for part in parts:
        for name, amount in part.items():
            total[name] = total.get(name, 0) + amount
    return total


def freeze(amounts: Mapping[str, int]) -> FrozenAmounts:
    return tuple(sorted((name, amount) for name, amount in amounts.items() if amount))


def fits(need: Mapping[str, int], free: Mapping[str, int]) -> bool:
    """True when every resource asked for is free in that amount (a resource the node lacks is 0)."""
    return all(free.get(name, 0) >= amount for name, amount in need.items())


def short_of(need: Mapping[str, int], free: Mapping[str, int]) -> list[str]:
    """The resources of which `free` holds less than `need`, by name."""
    return sorted(name for name, amount in need.items() if free.get(name, 0) < amount)
