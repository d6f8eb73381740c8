"""Running the kopf operator with our handlers (what `aifactory run` and the image execute)."""

import asyncio
import logging


def run_operator(*, verbose: bool = False, liveness: str | None = None, metrics_port: int = 0) -> None:
    """Runs until SIGINT/SIGTERM; watches our kinds in every namespace."""
    import kopf
    from prometheus_client import start_http_server

    if metrics_port:
        start_http_server(metrics_port)

    from . import handlers  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    asyncio.run(
        kopf.operator(
            clusterwide=True,
            standalone=True,
            liveness_endpoint=liveness,
        )
    )
