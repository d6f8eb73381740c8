"""Operator-wide kopf settings."""

import logging
from typing import Any

import kopf

from ..api.v1alpha1 import AIFactory, Dataset
from ..constants import FINALIZER, GROUP
from ..kube.client import load_config
from ..settings import load_settings


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Our own annotation prefix and finalizer; Events only for warnings, since each is an API write."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = DiffBaseOfChangeHandledKinds(
        {AIFactory.info.kind, Dataset.info.kind}, prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    # With peering (several replicas), a standby takes over once the active replica's record is
    # this old; kopf's default is a minute.
    settings.peering.lifetime = load_settings().peering_lifetime_seconds


class DiffBaseOfChangeHandledKinds(kopf.AnnotationsDiffBaseStorage):
    """kopf builds an object's "essence" (a deep copy) on every watch event of every kind it
    watches, though only kinds with create/update handlers, timers or daemons ever compare it.
    For the Pods, Jobs and Nodes we only index, that copy was a tenth of the operator's CPU."""

    def __init__(self, kinds: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kinds = kinds

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        if body.get("kind") in self.kinds or not body.get("kind"):
            return super().build(body=body, extra_fields=extra_fields)
        return kopf.BodyEssence()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Log in with the same configuration the official client uses (kubeconfig or in-cluster)."""
    load_config()
    return kopf.login_via_client(**kwargs)
