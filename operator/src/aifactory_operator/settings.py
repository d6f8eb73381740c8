"""The operator's configuration: every AIFACTORY_* variable the operator process reads, with its type,
default, bounds and reason, declared once. The environment is read once, at start (`load_settings`),
and a bad value stops the operator with the variable's name; docs/settings.md is generated from here.

The local control plane's own variables (AIFACTORY_DEVCLUSTER_DIR, AIFACTORY_KUBE, AIFACTORY_CACHE_DIR)
and KUBECONFIG are not here: they configure the command line and the tests that start a cluster, not
the operator (docs/settings.md says more)."""

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .constants import DEFAULT_PORT_BASE, OPERATOR_NAMESPACE

ENV_PREFIX = "AIFACTORY_"
DEFAULT_GC_THRESHOLD = (50000, 20, 10)


class InvalidSetting(ValueError):
    """A variable the operator cannot use: the message names it, its value and what it takes."""


def parse_threshold(value: Any) -> tuple[int, int, int]:
    """'50000,20,10' -> (50000, 20, 10): the three values of gc.set_threshold, each at least 1."""
    try:
        values = tuple(int(p) for p in (value.split(",") if isinstance(value, str) else value))
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise ValueError("give three positive integers, e.g. " + ",".join(map(str, DEFAULT_GC_THRESHOLD)))
    return values[0], values[1], values[2]


class Settings(BaseSettings):
    """One field per AIFACTORY_<FIELD> variable; an empty variable counts as unset."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True)

    # Reconciling.
    resync_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often a settled AIFactory or Dataset is reconciled again to repair drift (a deleted "
        "node, a changed label). Lower repairs sooner for more API reads; the end-to-end tests use 5.",
    )
    namespace: str = Field(
        default=OPERATOR_NAMESPACE,
        min_length=1,
        description="The operator's own namespace: the webhook's TLS Secret and the audit log live there, "
        "and admission webhooks never apply to it. The Helm chart sets it to the release namespace.",
    )
    installed_by: Literal["", "helm"] = Field(
        default="",
        description="`helm` when the chart installed the shared admission policies, the webhook "
        "configurations and the tenant-admin role: the operator then only binds the role and injects "
        "the CA bundle. Unset, the operator applies them itself at start. The chart sets it.",
    )
    peering_lifetime_seconds: int = Field(
        default=60,
        ge=1,
        description="With several replicas (kopf peering), a standby takes over once the active replica's "
        "peering record is this old. Lower fails over sooner, but a busy replica may then be taken "
        "for dead.",
    )
    # The training loop (docs/training.md).
    training_tick_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Ticks of each factory's training loop start this far apart (one that ran longer is "
        "followed at once). Lower admits sooner for more CPU; the end-to-end tests use 0.5.",
    )
    starvation_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Smaller jobs backfill past a head job that does not fit until it has waited this "
        "long; then nothing behind it in its pool is admitted, so large gangs are not starved.",
    )
    restart_backoff_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Wait before the first restart of a failed training attempt; it doubles with each "
        "further restart, up to 300 s.",
    )
    tick_admissions: int = Field(
        default=500,
        ge=1,
        description="Most jobs one tick admits, in queue order; the next tick follows at once. A tick "
        "writes all it admits before the next one looks, so a huge burst that all fits would hold "
        "every Running report behind its writes; much lower slows a large burst down.",
    )
    queue_refreshes_per_tick: int = Field(
        default=50,
        ge=0,
        description="Waiting jobs whose queuePosition and reason are rewritten per tick, stalest first: "
        "rewriting all would cost one write per queued job per tick.",
    )
    queue_entries_per_tick: int = Field(
        default=200,
        ge=0,
        description="Newly queued jobs, oldest first, that get their first Queued status per tick, so "
        "that thousands created at once do not hold a tick's admissions behind a write each.",
    )
    tick_writes: int = Field(
        default=100,
        ge=0,
        description="Writes per tick: decisions (creates, deletes, changes of phase) always go out, and "
        "the queue's reports get what they leave of this many. With a deep queue the API server's write "
        "rate paces admission.",
    )
    report_writes_min: int = Field(
        default=20,
        ge=0,
        description="Queue reports a tick writes however many decisions it made, so queue positions "
        "never stop moving.",
    )
    training_writers: int = Field(
        default=8,
        ge=1,
        description="Writes of one tick in flight at once: they are independent, and one at a time a tick "
        "that admits hundreds of jobs mostly waits on round trips.",
    )
    admission_unschedulable_grace_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How long a pod of an admitted gang may stay unschedulable before the gang is "
        "withdrawn and queued again, its GPUs freed for others. Raise it where nodes take long to come.",
    )
    # The admission webhook (docs/sovereignty.md).
    webhook: Literal["on", "off"] = Field(
        default="on",
        description="`off` runs without the admission webhook (the admission policies in the API server "
        "still apply): for an operator outside a cluster that cannot call back to it.",
    )
    webhook_listen: str | None = Field(
        default=None,
        description="Where the webhook server listens, as host:port (e.g. 0.0.0.0:9443). Unset: 127.0.0.1 "
        "at AIFACTORY_PORT_BASE + 10. The chart sets 0.0.0.0 and its webhook port.",
    )
    webhook_url: str | None = Field(
        default=None,
        pattern=r"^https://",
        description="The https URL kube-apiserver calls the webhook at, when it runs outside the cluster. "
        "Unset: https:// and the listen address.",
    )
    webhook_service: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
        description="The Service in front of the operator's webhook, in its namespace; it wins over "
        "AIFACTORY_WEBHOOK_URL. The chart sets it.",
    )
    pod_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$",
        description="This replica's own pod (the chart sets it from the downward API). With it, the active "
        "replica keeps the label `aifactory.dev/webhook` that the webhook Service selects on its pod alone, "
        "so admission calls reach only the replica whose view is current.",
    )
    webhook_cert_validity_seconds: int = Field(
        default=365 * 24 * 3600,
        ge=10,
        description="How long a webhook serving certificate the operator issues is valid. It is renewed, "
        "by the running operator, once two thirds of that time have passed (CA: ten times as long).",
    )
    webhook_cert_check_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often the running operator checks whether the webhook's certificate is due "
        "for renewal.",
    )
    port_base: int = Field(
        default=DEFAULT_PORT_BASE,
        ge=1,
        le=65535 - 30,
        description="The local control plane's first port; the operator reads it only for its default "
        "webhook port (base + 10), so operators beside control planes on other bases never share one.",
    )
    # The process.
    gc_threshold: Annotated[tuple[int, int, int], NoDecode, BeforeValidator(parse_threshold)] = Field(
        default=DEFAULT_GC_THRESHOLD,
        description="Python's cycle-collector thresholds (gc.set_threshold). The first, far above "
        "Python's 700, lets a tick's short-lived objects die before a collection walks the watched "
        "objects (docs/metrics.md).",
    )
    # Tests only.
    crash_after_writes: int = Field(
        default=0,
        ge=0,
        description="Tests only: the process dies as from SIGKILL right after its N-th successful API "
        "write (the chaos tests). 0: never.",
    )

    @field_validator("webhook_listen")
    @classmethod
    def _is_host_and_port(cls, value: str | None) -> str | None:
        if value is not None:
            _, colon, port = value.rpartition(":")
            if not (colon and port.isdigit() and 1 <= int(port) <= 65535):
                raise ValueError("give host:port, e.g. 0.0.0.0:9443")
        return value


def env_name(field: str) -> str:
    """The variable that sets `field`: tick_writes -> AIFACTORY_TICK_WRITES."""
    return ENV_PREFIX + field.upper()


def read_settings() -> Settings:
    """The settings from the environment now; a bad value raises InvalidSetting naming every
    variable at fault, its value and what it takes."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(describe_error(e) for e in error.errors())
        raise InvalidSetting(f"{problems} (see docs/settings.md)") from None


def describe_error(error: Any) -> str:
    """One pydantic error as `AIFACTORY_TICK_WRITES='abc': Input should be a valid integer, ...`."""
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{env_name(str(error['loc'][0]))}={error['input']!r}: {message}"


@cache
def load_settings() -> Settings:
    """The operator's settings, read from the environment once per process."""
    return read_settings()
