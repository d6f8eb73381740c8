"""Acting as someone else: an impersonating client, and a user granted a ClusterRole of given
rules (the RBAC a cluster operator might hand out by mistake)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aifactory_operator.kube.client import Kube, load_config

RBAC = "rbac.authorization.k8s.io/v1"


def impersonating(kubeconfig: Path, user: str, group: str) -> Kube:
    """A client acting as `user` in `group` (the admin may impersonate)."""
    api_client = load_config(str(kubeconfig))
    api_client.default_headers["Impersonate-User"] = user
    api_client.default_headers["Impersonate-Group"] = group
    return Kube(api_client)


@contextmanager
def user_with_cluster_role(
    kube: Kube, kubeconfig: Path, role: str, user: str, rules: list[dict[str, Any]]
) -> Iterator[Kube]:
    """`user`, bound cluster-wide to a ClusterRole `role` of `rules`; both removed afterwards."""
    kube.apply({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": role}, "rules": rules})
    kube.apply(
        {
            "apiVersion": RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
    )
    try:
        yield impersonating(kubeconfig, user, "system:authenticated")
    finally:
        kube.delete(RBAC, "ClusterRoleBinding", role)
        kube.delete(RBAC, "ClusterRole", role)
