"""The local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK)."""

from .cluster import cluster_status, down, up
from .errors import DevClusterError

__all__ = ["DevClusterError", "cluster_status", "down", "up"]
