"""The node selector of the pods the operator renders: the factory, the pool and the jurisdiction,
so its own pods satisfy the positive placement rule as written, without the mutating webhook."""

from ..api.v1alpha1.aifactory import NodePool
from ..constants import LABEL_FACTORY, LABEL_JURISDICTION, LABEL_POOL


def construct_node_selector(factory_name: str, pool: NodePool, jurisdiction: str) -> dict[str, str]:
    selector = {LABEL_FACTORY: factory_name, LABEL_POOL: pool.name}
    if jurisdiction:
        selector[LABEL_JURISDICTION] = jurisdiction
    return selector
