"""AIFactory handlers: parse -> observe -> plan -> apply -> report."""

from typing import Any

import kopf

from ..api.v1alpha1 import AIFactory
from ..constants import GROUP, LABEL_FACTORY, VERSION
from ..reconcile.aifactory import plan_factory
from ..reconcile.conditions import Outcome
from ..reconcile.parsing import InvalidSpec, parse_resource
from ..reconcile.validation import find_factory_problems
from .runtime import RESYNC_SECONDS, kube, report, retry_if_progressing

PLURAL = AIFactory.info.plural


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.timer(
    GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS, idle=RESYNC_SECONDS
)
def reconcile_factory(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    """Makes the cluster's nodes match the factory's pools and reports what is ready."""
    try:
        factory = parse_resource(AIFactory, dict(body))
        if problems := find_factory_problems(factory):
            raise InvalidSpec(Outcome.stalled("InvalidSpec", "; ".join(problems)))
    except InvalidSpec as invalid:
        report(patch, body, invalid.outcome)
        return
    observed = kube().list("v1", "Node", label_selector=f"{LABEL_FACTORY}={factory.name}")
    plan = plan_factory(factory, observed)
    applied = kube().apply_all(plan.apply)
    for name in plan.delete_nodes:
        kube().delete("v1", "Node", name)
        logger.info(f"Deleted Node {name} factory={factory.name}")
    logger.debug(f"Applied {applied} nodes factory={factory.name}")
    report(patch, body, plan.outcome, **plan.status)
    retry_if_progressing(plan.outcome)
