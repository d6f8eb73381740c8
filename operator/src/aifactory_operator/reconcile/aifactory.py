"""The AIFactory reconcile plan: every child to apply, patch or delete, and the status to report.

Pure: it takes what was observed and returns what to write, already reduced to the objects that
differ, so that reconciling an unchanged factory writes nothing.
"""

from dataclasses import dataclass, field
from typing import Any

from ..api.v1alpha1.aifactory import AIFactory, AIFactoryStatus, PoolStatus, RetainedObject
from ..constants import ANNOTATION_CREATED, ANNOTATION_RETAINED, LABEL_ENFORCED, LABEL_FACTORY, LABEL_STORAGE
from .admission_policies import construct_factory_bindings
from .conditions import Outcome
from .diff import is_satisfied, object_key
from .enforcement import is_enforced, is_locked, lock_patch, plan_orphan_sweep, reopen_patch
from .nodepools import (
    Node,
    PodOnNode,
    is_simulated_by_factory,
    plan_nodes,
    release_patch,
    summarize_pools,
)
from .storage import construct_storage_class
from .tenants import (
    POD_SECURITY_LABELS,
    construct_namespace,
    construct_tenant_admin_role,
    construct_tenant_objects,
)

Obj = dict[str, Any]


@dataclass(frozen=True)
class Ref:
    """Identifies one object to delete or patch."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: Obj) -> "Ref":
        meta = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


@dataclass(frozen=True)
class FactoryObservation:
    """What the cluster holds that concerns one factory."""

    nodes: list[Node] = field(default_factory=list)
    pods: list[PodOnNode] = field(default_factory=list)
    children: list[Obj] = field(default_factory=list)  # objects labelled with the factory
    namespaces: dict[str, Obj] = field(default_factory=dict)  # existing namespaces by name
    datasets: dict[str, list[str]] = field(default_factory=dict)  # namespace -> Dataset names
    cluster_role: Obj | None = None
    volumes: list[Obj] = field(default_factory=list)  # PersistentVolumes labelled with the factory
    # False when the Helm chart installs the tenant-admin role (the operator may only bind it).
    manages_tenant_role: bool = True
    # Every factory's policy bindings and the factories that exist: a binding outlives its factory
    # while a namespace carries the factory's label; empty when not observed (no sweep then).
    all_bindings: list[Obj] = field(default_factory=list)
    factory_names: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FactoryPlan:
    """Everything one reconcile of an AIFactory will write."""

    apply: list[Obj] = field(default_factory=list)
    patch: list[tuple[Ref, Obj]] = field(default_factory=list)
    delete: list[Ref] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    outcome: Outcome = field(default_factory=lambda: Outcome.progressing("Reconciling", ""))
    # Tenant namespaces still locked: prove the policies in force there, then unlock them.
    enforce: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.apply) + len(self.patch) + len(self.delete)


def plan_factory(factory: AIFactory, observed: FactoryObservation) -> FactoryPlan:
    """Observed cluster -> the writes that make it match the factory, and the status to report."""
    nodes = plan_nodes(factory, observed.nodes, observed.pods)
    shared = [construct_tenant_admin_role()] if observed.manages_tenant_role else []
    desired = [*nodes.apply, *desired_children(factory, observed), *shared]
    current = _index(observed)
    apply = [
        obj
        for obj in desired
        if not is_satisfied(obj, current.get(object_key(obj))) and not is_withheld(obj, observed)
    ]
    wanted = {object_key(obj) for obj in desired}
    stale = [obj for obj in observed.children if object_key(obj) not in wanted]
    deletes, patches, retained = prune(stale, observed)
    retained += orphaned_volumes(factory, observed.volumes)
    if observed.factory_names:
        swept, locks = plan_orphan_sweep(
            observed.namespaces, observed.all_bindings, set(observed.factory_names)
        )
        deletes += [Ref.of(binding) for binding in swept]
        patches += [(Ref("v1", "Namespace", name), body) for name, body in locks]
    patches = [*patches, *((Ref("v1", "Node", name), body) for name, body in nodes.patch.items())]
    deletes = [*deletes, *(Ref("v1", "Node", name) for name in nodes.delete)]
    pools = summarize_pools(factory, observed.nodes, observed.pods)
    for pool in pools:
        pool.draining = sorted(nodes.draining.get(pool.name, []))
    enforce = unenforced_namespaces(factory, observed)
    patches += [
        (Ref("v1", "Namespace", n), reopen_patch()) for n in enforce if is_locked(observed.namespaces.get(n))
    ]
    outcome = judge_enforcement(judge_pools(pools), enforce)
    status = AIFactoryStatus(
        observed_generation=factory.generation,
        pools=pools,
        pool_count=len(factory.spec.node_pools),
        tenant_count=len(factory.spec.tenants),
        gpus_ready=sum(p.gpus_allocatable for p in pools),
        gpus_desired=sum(p.nodes * p.gpus_per_node for p in factory.spec.node_pools),
        gpus_in_use=sum(p.gpus_in_use for p in pools),
        retained=retained,
    )
    status.gpus = f"{status.gpus_ready}/{status.gpus_desired}"
    wire = status.to_wire()
    wire.pop("conditions", None)
    return FactoryPlan(
        apply=apply, patch=patches, delete=deletes, status=wire, outcome=outcome, enforce=enforce
    )


def unenforced_namespaces(factory: AIFactory, observed: FactoryObservation) -> list[str]:
    """The factory's tenant namespaces not yet unlocked (new, or adopted from an earlier factory)."""
    return [
        namespace
        for tenant in factory.spec.tenants
        for namespace in tenant.namespaces
        if not is_enforced(observed.namespaces.get(namespace))
    ]


def is_withheld(obj: Obj, observed: FactoryObservation) -> bool:
    """A tenant's RoleBinding waits for its namespace to be unlocked: until the policies are proved
    in force there, the tenant gets no rights to write in it (one granted earlier is left alone)."""
    namespace = obj["metadata"].get("namespace")
    return obj["kind"] == "RoleBinding" and not is_enforced(observed.namespaces.get(namespace or ""))


def judge_enforcement(outcome: Outcome, enforce: list[str]) -> Outcome:
    """Not Ready while a tenant namespace is locked, so that "Ready" means tenants may write."""
    if outcome.state != "ready" or not enforce:
        return outcome
    return Outcome.progressing(
        "EnforcementPending",
        "proving the admission policies in force in namespaces " + ", ".join(enforce),
    )


def desired_children(factory: AIFactory, observed: FactoryObservation) -> list[Obj]:
    """Tenant namespaces and their contents, a StorageClass per storage entry, and the bindings
    that hold the tenant namespaces to the factory's admission policies."""
    objects: list[Obj] = []
    for tenant in factory.spec.tenants:
        for namespace in tenant.namespaces:
            existing = observed.namespaces.get(namespace)
            created = existing is None or _annotation(existing, ANNOTATION_CREATED) == "true"
            objects.append(construct_namespace(factory, tenant, namespace, created_by_us=created))
            objects.extend(construct_tenant_objects(factory, tenant, namespace))
    objects.extend(construct_storage_class(factory, storage) for storage in factory.spec.storage)
    objects.extend(construct_factory_bindings(factory))
    return objects


def prune(
    stale: list[Obj], observed: FactoryObservation
) -> tuple[list[Ref], list[tuple[Ref, Obj]], list[RetainedObject]]:
    """What to do with children no longer in the spec: delete, release, or keep what holds data."""
    deletes: list[Ref] = []
    patches: list[tuple[Ref, Obj]] = []
    retained: list[RetainedObject] = []
    namespaces = {obj["metadata"]["name"]: obj for obj in stale if obj["kind"] == "Namespace"}
    kept, released = set(), set()
    for name, namespace in sorted(namespaces.items()):
        if datasets := observed.datasets.get(name):
            reason = "holds Dataset " + ", ".join(f"{name}/{d}" for d in sorted(datasets))
            retained.append(RetainedObject(kind="Namespace", name=name, reason=reason))
            kept.add(name)
            if _annotation(namespace, ANNOTATION_RETAINED) != reason or not is_locked(namespace):
                patches.append((Ref.of(namespace), lock_patch(reason)))
        elif _annotation(namespace, ANNOTATION_CREATED) == "true":
            deletes.append(Ref.of(namespace))
        else:
            released.add(name)
            patches.append((Ref.of(namespace), release_namespace_patch()))
    for obj in stale:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] == "Namespace" or namespace in kept:
            continue
        if namespace is None or namespace in released or namespace not in namespaces:
            deletes.append(Ref.of(obj))
    return deletes, patches, retained


def orphaned_volumes(factory: AIFactory, volumes: list[Obj]) -> list[RetainedObject]:
    """Volumes of storage entries removed from the spec: never deleted, since they hold data."""
    names = {s.name for s in factory.spec.storage}
    kept = []
    for volume in volumes:
        storage = volume["metadata"].get("labels", {}).get(LABEL_STORAGE)
        if storage and storage not in names:
            claim = volume.get("spec", {}).get("claimRef") or {}
            reason = (
                f"storage '{storage}' was removed from the spec; the volume holds data of claim"
                f" {claim.get('namespace')}/{claim.get('name')}"
            )
            kept.append(
                RetainedObject(kind="PersistentVolume", name=volume["metadata"]["name"], reason=reason)
            )
    return kept


def release_namespace_patch() -> Obj:
    """Removes our labels from a namespace we adopted; the namespace and its workloads stay."""
    keys = [
        LABEL_FACTORY,
        LABEL_ENFORCED,
        "aifactory.dev/tenant",
        "aifactory.dev/clearance",
        *POD_SECURITY_LABELS,
    ]
    return {"metadata": {"labels": {key: None for key in keys}}}


def judge_pools(pools: list[PoolStatus]) -> Outcome:
    """Ready when every pool has all its nodes ready and none drains; otherwise say what waits."""
    waiting = [
        f"pool '{p.name}': {p.nodes_ready} of {p.nodes_desired} nodes ready"
        for p in pools
        if p.nodes_ready < p.nodes_desired
    ]
    waiting += [
        f"pool '{p.name}': draining {', '.join(p.draining)} (waiting for their pods to finish)"
        for p in pools
        if p.draining
    ]
    if waiting:
        return Outcome.progressing(
            "NodesNotReady" if "ready" in waiting[0] else "Draining", "; ".join(waiting)
        )
    gpus = sum(p.gpus_allocatable for p in pools)
    nodes = sum(p.nodes_ready for p in pools)
    return Outcome.ready("FactoryReady", f"{len(pools)} pools, {nodes} nodes and {gpus} GPUs ready")


def _index(observed: FactoryObservation) -> dict[str, Obj]:
    index = {object_key(obj): obj for obj in observed.children}
    index.update({object_key(n): n for n in observed.nodes})
    index.update({object_key(ns): ns for ns in observed.namespaces.values()})
    if observed.cluster_role:
        index[object_key(observed.cluster_role)] = observed.cluster_role
    return index


def _annotation(obj: Obj, key: str) -> str | None:
    return (obj["metadata"].get("annotations") or {}).get(key)


def plan_factory_deletion(factory: AIFactory, observed: FactoryObservation) -> FactoryPlan:
    """What deleting the factory removes: its nodes, storage classes, empty namespaces and unused
    volumes; what holds data is kept (locked) and reported in `status.retained`, and the policy
    bindings stay while a kept namespace carries the factory's label."""
    deletes, patches, retained = prune(observed.children, observed)
    if any(kept.kind == "Namespace" for kept in retained):
        deletes = [ref for ref in deletes if ref.kind != "ValidatingAdmissionPolicyBinding"]
    ours = [n for n in observed.nodes if n["metadata"].get("labels", {}).get(LABEL_FACTORY) == factory.name]
    for node in ours:
        if is_simulated_by_factory(node):
            deletes.append(Ref("v1", "Node", node["metadata"]["name"]))
        else:
            patches.append((Ref("v1", "Node", node["metadata"]["name"]), release_patch(node)))
    for volume in observed.volumes:
        phase = volume.get("status", {}).get("phase")
        if phase == "Available":
            deletes.append(Ref.of(volume))
        else:
            claim = volume.get("spec", {}).get("claimRef") or {}
            reason = f"{phase or 'in use'}; holds data of claim {claim.get('namespace')}/{claim.get('name')}"
            retained.append(
                RetainedObject(kind="PersistentVolume", name=volume["metadata"]["name"], reason=reason)
            )
    return FactoryPlan(delete=deletes, patch=patches, status={"retained": [r.to_wire() for r in retained]})
