"""Lifecycle doors: a tenant namespace is writable only while its factory exists, lists it, and has
been proved to enforce its policies there. Every other state fails closed."""

from .violations import Violation

ORPHANED_NAMESPACE = "lifecycle/orphaned-namespace"
NOT_YET_ENFORCED = "lifecycle/not-yet-enforced"


def orphaned_message(namespace: str, factory: str) -> str:
    """One wording for the webhook and the guard policy, so a refusal reads the same from both."""
    return (
        f"namespace '{namespace}' is labelled for AIFactory '{factory}', which does not exist or no"
        f" longer lists it as a tenant namespace; re-create the AIFactory '{factory}' with the namespace"
        " in spec.tenants[].namespaces, or ask a cluster admin to move the data out and delete the"
        " namespace"
    )


def not_yet_enforced_message(namespace: str, factory: str) -> str:
    return (
        f"the admission policies of AIFactory '{factory}' are not yet proved in force in namespace"
        f" '{namespace}'; wait until the AIFactory is Ready and retry"
    )


def check_namespace_owner(namespace: str, factory: str | None, *, listed: bool) -> list[Violation]:
    """A write in a namespace labelled `aifactory.dev/factory=<factory>` (None: the label was not
    seen) is judged only while that factory exists and lists the namespace (`listed`); a namespace
    that outlived its factory, or that the factory let go of, is locked rather than left open."""
    if listed:
        return []
    owner = factory or "(unknown)"
    return [Violation(ORPHANED_NAMESPACE, "metadata.namespace", orphaned_message(namespace, owner))]
