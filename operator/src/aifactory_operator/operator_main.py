"""Running the kopf operator with our handlers (what `aifactory run` and the image execute)."""

import asyncio
import logging
import secrets
import sys

from .settings import InvalidSetting, Settings, load_settings

# kopf lets the peer with the highest priority work and pauses the others; equal priorities would
# pause them all, so each replica draws its own from a range where a tie is vanishingly unlikely.
PRIORITY_RANGE = 2**31 - 1
# The webhook thread shares the interpreter lock with the event loop and the status writers, and an
# admission answer needs it several times; Python hands it over every 5 ms by default. At 1 ms
# the TrainingJob webhook's mean under bench/training_e2e.py fell from 14 to 11 ms (kube-apiserver's
# own histogram), and a TrainingJob create from 51 to 41 ms.
GIL_SWITCH_SECONDS = 0.001


def run_operator(
    *, verbose: bool = False, liveness: str | None = None, metrics_port: int = 0, peering: str | None = None
) -> None:
    """Runs until SIGINT/SIGTERM; watches our kinds in every namespace. With `peering`, replicas
    coordinate through that ClusterKopfPeering and only one acts at a time."""
    try:
        settings = load_settings()  # first, so that a bad variable stops us before anything starts
    except InvalidSetting as error:
        raise SystemExit(f"aifactory: error: {error}") from None

    import kopf
    from prometheus_client import start_http_server

    refuse_a_served_webhook_address(settings)
    if metrics_port:
        start_http_server(metrics_port)

    from . import handlers  # noqa: F401  (registers the handlers)
    from .collector import tune_collector
    from .handlers import toggles

    toggles.install()
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    tune_collector(settings.gc_threshold)

    priority = 1 + secrets.randbelow(PRIORITY_RANGE) if peering else None
    from .handlers import standby

    standby.peering.name, standby.peering.priority = peering, priority
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    asyncio.run(
        kopf.operator(
            clusterwide=True,
            standalone=peering is None,
            peering_name=peering,
            priority=priority,
            liveness_endpoint=liveness,
        )
    )


def refuse_a_served_webhook_address(settings: Settings) -> None:
    """Exits with one line when another process already serves our webhook address: sharing it
    would fail admission calls at random (see listen.py)."""
    from .handlers.admission_control import WebhookSettings
    from .listen import is_served

    webhook = WebhookSettings.from_settings(settings)
    if webhook.enabled and is_served(webhook.listen_host, webhook.listen_port):
        address = f"{webhook.listen_host}:{webhook.listen_port}"
        raise SystemExit(
            f"aifactory: error: the webhook address {address} is already served by another process"
            f" (another operator? `ss -ltnp 'sport = :{webhook.listen_port}'` names it); stop it, or move"
            " this one with AIFACTORY_PORT_BASE or AIFACTORY_WEBHOOK_LISTEN"
        )
