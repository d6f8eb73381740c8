"""Lifecycle doors of a tenant namespace: locked until the factory's policies are proved in force
there, unlocked by the operator alone, locked again when the factory lets go of it or is deleted.

A namespace carries `aifactory.dev/factory` from its first write, and the lifecycle guard refuses
tenant writes in it until `aifactory.dev/enforced=true`. kube-apiserver's policy informers lag
behind a new binding, so "applied" is not "in force": the operator dry-runs a pod that the factory's
policies must refuse, and only a refusal from one of the factory's own bindings unlocks the
namespace (and lets the tenant's RoleBindings be applied).
"""

from typing import Any

from ..constants import ANNOTATION_RETAINED, ENFORCED, LABEL_ENFORCED, LABEL_FACTORY, LABEL_REGION, LOCKED
from .admission_policies import FACTORY_POLICY_NAMES
from .podsecurity import restricted_container_security, restricted_pod_security

Obj = dict[str, Any]
PROBE_NAME = "aifactory-enforcement-probe"
# No factory has this region, so the locality rule of every factory refuses the probe; everything
# else about it passes Pod Security "restricted", which kube-apiserver judges before the policies.
PROBE_REGION = "aifactory-enforcement-probe"


def door_of(namespace: Obj | None) -> str | None:
    return (((namespace or {}).get("metadata") or {}).get("labels") or {}).get(LABEL_ENFORCED)


def is_enforced(namespace: Obj | None) -> bool:
    return door_of(namespace) == ENFORCED


def is_locked(namespace: Obj | None) -> bool:
    """Locked after its factory let go of it: the factory's bindings no longer match it (so the
    lifecycle guard's refusal, which names the factory and the fix, is the one a tenant reads)."""
    return door_of(namespace) == LOCKED


def construct_enforcement_probe(namespace: str) -> Obj:
    """A pod only ever created as a server-side dry run: the factory's policies must refuse it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PROBE_NAME, "namespace": namespace},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": restricted_pod_security(),
            "nodeSelector": {LABEL_REGION: PROBE_REGION},
            "containers": [
                {
                    "name": "probe",
                    "image": "registry.invalid/aifactory/enforcement-probe@sha256:" + "0" * 64,
                    "securityContext": restricted_container_security(),
                    "resources": {"limits": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


def factory_binding_names(factory: str) -> list[str]:
    return [f"{policy}.{factory}" for policy in FACTORY_POLICY_NAMES]


def is_refused_by_factory(refusal: str | None, factory: str) -> bool:
    """The dry run was refused by one of this factory's bindings (kube-apiserver names the binding:
    "ValidatingAdmissionPolicy 'p' with binding 'p.<factory>' denied request")."""
    if not refusal:
        return False
    return any(f"binding '{name}'" in refusal for name in factory_binding_names(factory))


def enforce_patch() -> Obj:
    """Unlocks a namespace (and clears a retention mark left by an earlier factory of this name)."""
    return {"metadata": {"labels": {LABEL_ENFORCED: ENFORCED}, "annotations": {ANNOTATION_RETAINED: None}}}


def reopen_patch() -> Obj:
    """A locked namespace a factory lists again goes back to "not yet": the factory's bindings match
    it again, so that the probe can prove them in force before it is unlocked."""
    return {"metadata": {"labels": {LABEL_ENFORCED: None}}}


def lock_patch(reason: str) -> Obj:
    """Locks a namespace kept after its factory let go of it: the lifecycle guard refuses every
    tenant write there, naming the factory, until a factory of that name lists it again."""
    return {"metadata": {"labels": {LABEL_ENFORCED: LOCKED}, "annotations": {ANNOTATION_RETAINED: reason}}}


def factory_of(namespace: Obj) -> str | None:
    return ((namespace.get("metadata") or {}).get("labels") or {}).get(LABEL_FACTORY)


def is_terminating(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def plan_orphan_sweep(
    namespaces: dict[str, Obj], bindings: list[Obj], factories: set[str]
) -> tuple[list[Obj], list[tuple[str, Obj]]]:
    """Bindings of factories that are gone and hold no namespace any more (to delete), and
    namespaces still unlocked for a factory that is gone (its finalizer was removed by hand): the
    lock they need. A namespace never unlocked is locked already; a terminating one admits no new
    objects, so it holds nothing open."""
    held = {factory_of(ns) for ns in namespaces.values() if not is_terminating(ns)}
    stale = [b for b in bindings if (owner := factory_of(b)) and owner not in factories and owner not in held]
    locks = [
        (name, lock_patch(f"AIFactory '{owner}' no longer exists"))
        for name, ns in sorted(namespaces.items())
        if (owner := factory_of(ns)) and owner not in factories and not is_terminating(ns) and is_enforced(ns)
    ]
    return stale, locks
