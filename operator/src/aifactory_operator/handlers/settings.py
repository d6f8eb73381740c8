"""Operator-wide kopf settings."""

import logging
import os
from typing import Any

import kopf

from ..constants import FINALIZER, GROUP
from ..kube.client import load_config


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Our own annotation prefix and finalizer; Events only for warnings, since each is an API write."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    # With peering (several replicas), a standby takes over once the active replica's record is
    # this old; kopf's default is a minute.
    settings.peering.lifetime = int(os.environ.get("AIFACTORY_PEERING_LIFETIME_SECONDS", "60"))


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Log in with the same configuration the official client uses (kubeconfig or in-cluster)."""
    load_config()
    return kopf.login_via_client(**kwargs)
