"""The Grafana dashboard shipped with the chart reads the metrics the operator serves, and shows each."""

import json
import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from aifactory_operator import metrics

DASHBOARD = (
    Path(__file__).parents[2] / "charts" / "aifactory-operator" / "dashboards" / "aifactory-operator.json"
)
# Counted for completeness, not charted: the audit log's length is (aifactory_audit_log_entries); the
# head's hash is a label to compare and alert on, not a line to draw.
NOT_CHARTED = {"aifactory_audit_entries", "aifactory_audit_log_head"}


def served_families() -> set[str]:
    collectors = [m for m in vars(metrics).values() if isinstance(m, Counter | Gauge | Histogram)]
    return {family.name for collector in collectors for family in collector.collect()}


def queried_families(dashboard: dict) -> set[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    names = {name for expr in exprs for name in re.findall(r"\baifactory_[a-z_]+", expr)}
    return {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in names}


def test_every_query_names_a_metric_the_operator_serves():
    dashboard = json.loads(DASHBOARD.read_text())
    assert queried_families(dashboard) <= served_families()


def test_every_metric_family_has_a_panel():
    dashboard = json.loads(DASHBOARD.read_text())
    assert served_families() - NOT_CHARTED <= queried_families(dashboard)


def test_panels_read_the_data_source_chosen_in_the_dashboard():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert {p["datasource"]["uid"] for p in panels} == {"${DS_PROMETHEUS}"}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
