"""At startup: the webhook's TLS (a CA and serving certificate kept in a Secret, so every replica
serves the same one), the shared admission policies and guard rails, and the webhook
configurations pointing at this operator."""

import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kopf

from ..devcluster.layout import Ports
from ..kube.client import Kube
from ..reconcile.admission_policies import (
    RETIRED_POLICY_NAMES,
    construct_factory_policies,
)
from ..reconcile.capabilities import CAPABILITIES, describe_capabilities, missing_requirements
from ..reconcile.guard_policies import construct_guard_rails
from ..reconcile.placement_mutation import MAP_API, construct_placement_mutation
from ..reconcile.tenant_guards import construct_tenant_guards
from ..reconcile.webhook_objects import (
    Endpoint,
    construct_audit_tap_configuration,
    construct_placement_configuration,
    construct_validating_configuration,
)
from ..settings import Settings, load_settings
from . import standby, webhook
from .refusals import RefusalRecorder
from .runtime import INSTALLED_BY_HELM, kube, now
from .webhook_route import RouteKeeper
from .webhook_thread import WebhookServerThread
from .webhook_tls import ServingContext, TlsKeeper, ensure_tls


@dataclass(frozen=True)
class WebhookSettings:
    """Where the webhook server listens and how kube-apiserver reaches it, from the operator's
    settings: AIFACTORY_WEBHOOK=off disables it; AIFACTORY_WEBHOOK_SERVICE names the operator's
    Service (in-cluster), otherwise AIFACTORY_WEBHOOK_URL (default: https://<listen address>). The
    listen address is AIFACTORY_WEBHOOK_LISTEN, by default 127.0.0.1 at AIFACTORY_PORT_BASE + 10
    (16450), so that operators beside control planes on other port bases never share one port."""

    enabled: bool
    namespace: str
    listen_host: str
    listen_port: int
    url: str | None
    service: str | None
    pod_name: str | None = None
    cert_validity_seconds: int = 365 * 24 * 3600
    cert_check_seconds: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "WebhookSettings":
        listen = settings.webhook_listen or f"127.0.0.1:{Ports(settings.port_base).webhook}"
        host, _, port = listen.rpartition(":")
        service = settings.webhook_service
        url = settings.webhook_url or (None if service else f"https://{host}:{port}")
        return cls(
            enabled=settings.webhook == "on",
            namespace=settings.namespace,
            listen_host=host,
            listen_port=int(port),
            url=url,
            service=service,
            pod_name=settings.pod_name,
            cert_validity_seconds=settings.webhook_cert_validity_seconds,
            cert_check_seconds=settings.webhook_cert_check_seconds,
        )

    def hosts(self) -> list[str]:
        """The names the serving certificate must carry."""
        if self.service:
            base = f"{self.service}.{self.namespace}"
            return [self.service, base, f"{base}.svc", f"{base}.svc.cluster.local"]
        return [urlsplit(self.url or "").hostname or self.listen_host]

    def endpoint(self, ca_bundle: bytes) -> Endpoint:
        if self.service:
            return Endpoint(ca_bundle, service_namespace=self.namespace, service_name=self.service)
        return Endpoint(ca_bundle, url=self.url)


@kopf.on.startup()
def start_admission_control(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    config = WebhookSettings.from_settings(load_settings())
    client = kube()
    served = check_capabilities(client, logger)
    mutation_served = "mutatingadmissionpolicies" in served.get(MAP_API, set())
    ensure_namespace(client, config.namespace)
    identity = whoami(client)
    if not INSTALLED_BY_HELM:
        client.apply_all(
            [
                *construct_factory_policies([identity]),
                *construct_guard_rails([identity], config.namespace),
                *construct_tenant_guards([identity]),
            ]
        )
        if mutation_served:
            client.apply_all(construct_placement_mutation())
        for retired in RETIRED_POLICY_NAMES:
            client.delete("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", retired)
    standby.peering.client = client
    webhook.recorder = RefusalRecorder(client, config.namespace)
    webhook.operator_user = identity
    if not config.enabled:
        logger.info("Skipped the admission webhook (AIFACTORY_WEBHOOK=off)")
        return
    serve_webhook(settings, client, config, identity)
    logger.info(f"Started admission control identity={identity} webhook={config.url or config.service}")


def serve_webhook(
    settings: kopf.OperatorSettings, client: Kube, config: "WebhookSettings", identity: str
) -> None:
    """Serves the webhook with the TLS kept in the Secret, publishes the configurations that point
    at it, and starts the threads that renew the certificate and route the Service."""
    global keeper, router
    hosts, validity = config.hosts(), timedelta(seconds=config.cert_validity_seconds)
    tls = ensure_tls(client, config.namespace, hosts, now(), validity)
    serving = ServingContext(Path(tempfile.mkdtemp(prefix="aifactory-webhook-")), tls.server)
    settings.admission.server = WebhookServerThread(
        # kopf loads the files into our context (without them it would make its own certificate);
        # the keeper later loads renewed pairs into the same context.
        kopf.WebhookServer(
            addr=config.listen_host,
            port=config.listen_port,
            context=serving.context,
            certfile=str(serving.folder / "tls.crt"),
            pkeyfile=str(serving.folder / "tls.key"),
        )
    )

    def publish(bundle: bytes) -> None:
        publish_configurations(client, config, bundle, identity)

    publish(tls.bundle)
    keeper = TlsKeeper(
        lambda: ensure_tls(client, config.namespace, hosts, now(), validity),
        serving,
        publish,
        tls.bundle,
        config.cert_check_seconds,
    )
    keeper.start()
    if config.service and config.pod_name:
        router = RouteKeeper(client, config.namespace, config.pod_name)
        router.start()


def publish_configurations(client: Kube, config: "WebhookSettings", bundle: bytes, identity: str) -> None:
    """The webhook configurations, pointing at this operator with `bundle` as the CA to trust
    (injected into the chart's configurations when Helm installed them)."""
    endpoint = config.endpoint(bundle)
    # The webhook places pods on every minor; where kube-apiserver also serves the policy, the
    # policy places them first (and while the operator is down) and the webhook finds them placed.
    configurations = [
        construct_validating_configuration(endpoint, config.namespace),
        construct_placement_configuration(endpoint, config.namespace),
        construct_audit_tap_configuration(endpoint, config.namespace, identity),
    ]
    for configuration in configurations:
        if INSTALLED_BY_HELM:
            inject_ca_bundle(client, configuration)
        else:
            client.apply(configuration)


keeper: TlsKeeper | None = None  # renews the webhook's certificate while the operator runs
router: RouteKeeper | None = None  # keeps the webhook Service's route on the active replica


@kopf.on.cleanup()
def stop_admission_control(**_: Any) -> None:
    """Writes the refusals still queued before the process exits; stops renewing certificates."""
    if webhook.recorder is not None:
        webhook.recorder.stop()
    for thread in (keeper, router):
        if thread is not None:
            thread.stop()


def inject_ca_bundle(client: Kube, configuration: dict[str, Any]) -> None:
    """Writes our CA bundle into the chart's webhook configuration of the same name (the chart
    cannot know the CA, which the operator makes); nothing else in it is touched."""
    kind, name = configuration["kind"], configuration["metadata"]["name"]
    installed = client.get(configuration["apiVersion"], kind, name)
    if installed is None:
        raise kopf.PermanentError(f"{kind} {name} is missing; reinstall the Helm chart")
    bundles = {w["name"]: w["clientConfig"]["caBundle"] for w in configuration["webhooks"]}
    patch = [
        {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundles[w["name"]]}
        for i, w in enumerate(installed["webhooks"])
        if w["name"] in bundles and w["clientConfig"].get("caBundle") != bundles[w["name"]]
    ]
    if patch:
        client.resource(configuration["apiVersion"], kind).patch(
            body=patch, name=name, content_type="application/json-patch+json"
        )


def check_capabilities(client: Kube, logger: kopf.Logger) -> dict[str, set[str]]:
    """Says in one line which protections run on this API server; stops where one cannot.
    Returns what it serves, by group/version."""
    version = client.server_version()
    served = {gv: client.served_resources(gv) for gv in {c.group_version for c in CAPABILITIES}}
    logger.info(describe_capabilities(version, served))
    problem = missing_requirements(version, served)
    if problem:
        raise kopf.PermanentError(problem)
    return served


def ensure_namespace(client: Kube, name: str) -> None:
    if client.get("v1", "Namespace", name) is None:
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def whoami(client: Kube) -> str:
    """The operator's user name, so that the guard rails exempt it and nobody else."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    result = client.resource("authentication.k8s.io/v1", "SelfSubjectReview").create(body=review)
    return str(result.status.userInfo.username)
