"""The Helm chart, checked without a cluster: generated parts current, helm lint, strict schemas of
the newest and the oldest supported Kubernetes minor, values.schema.json, checkov on the chart and on every tenant manifest, hadolint."""

import subprocess
import sys

import kubernetes_validate
import pytest
import yaml
from charttools import CHART, DIGEST, KUBE_VERSION, KUBE_VERSIONS, REPO, checkov, helm, render
from tenant_manifests import write_tenant_manifests

from aifactory_operator.chartgen import render_chart_files
from aifactory_operator.cli import _parser
from aifactory_operator.crdgen import render_crds

# Kinds whose schemas are not part of Kubernetes itself: checked as YAML and by the API server in
# the end-to-end install instead.
NOT_IN_KUBERNETES = {"ServiceMonitor", "ClusterKopfPeering"}
PROFILES = {
    "defaults": [],
    "pinned": [f"image.digest={DIGEST}"],
    "high availability": [
        "replicas=3",
        "metrics.serviceMonitor.enabled=true",
        "metrics.dashboard.enabled=true",
    ],
}


def test_the_charts_generated_files_match_the_code():
    for name, text in render_chart_files().items():
        assert (CHART / name).read_text() == text, f"{name} is stale: run `make crds`"


def test_the_chart_carries_the_same_crds_as_crds_folder():
    for name, text in render_crds().items():
        assert (CHART / "crds" / name).read_text() == (REPO / "crds" / name).read_text() == text


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_helm_lint_passes_strictly(kube_version):
    result = helm("lint", str(CHART), "--strict", "--kube-version", kube_version)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("profile", PROFILES, ids=list(PROFILES))
def test_every_rendered_object_is_valid_for_each_supported_kubernetes(profile, kube_version):
    objects = render(*PROFILES[profile], kube_version=kube_version)
    checked = 0
    for obj in objects:
        if obj["kind"] in NOT_IN_KUBERNETES:
            continue
        kubernetes_validate.validate(obj, kube_version, strict=True)
        checked += 1
    assert checked >= 20


def test_the_charts_kube_version_range_is_the_supported_one():
    newest, oldest = (tuple(int(part) for part in v.split(".")[:2]) for v in KUBE_VERSIONS)
    inside = [f"1.{minor}.0" for minor in range(oldest[1], newest[1] + 1)]
    outside = [f"1.{oldest[1] - 1}.9", f"1.{newest[1] + 1}.0"]
    for version in inside:
        helm("template", "x", str(CHART), "--kube-version", version)
    for version in outside:
        result = helm("template", "x", str(CHART), "--kube-version", version, check=False)
        assert result.returncode != 0 and "incompatible with Kubernetes" in result.stderr, version


def test_high_availability_adds_peering_and_a_disruption_budget():
    kinds = {o["kind"] for o in render(*PROFILES["high availability"])}
    assert {"ClusterKopfPeering", "PodDisruptionBudget", "ServiceMonitor", "ConfigMap"} <= kinds
    [deployment] = [o for o in render("replicas=3") if o["kind"] == "Deployment"]
    assert "--peering=aifactory-operator" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize(
    "bad",
    ["replicas=0", "image.digest=latest", "image.pullPolicy=Sometimes", "unknown=1", "webhook.port=80"],
)
def test_values_outside_the_schema_are_refused(bad):
    flags = ["template", "x", str(CHART), "--kube-version", KUBE_VERSION, f"--set={bad}"]
    result = helm(*flags, check=False)
    assert result.returncode != 0 and "values don't meet the specifications of the schema" in result.stderr


def test_the_image_entry_point_accepts_the_charts_arguments():
    [deployment] = [o for o in render("replicas=2") if o["kind"] == "Deployment"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["aifactory", "run"]' in dockerfile
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = _parser().parse_args(["run", *args])
    assert (parsed.metrics_port, parsed.peering) == (8000, "aifactory-operator")


def test_the_pod_is_restricted_read_only_and_gets_only_a_short_lived_token():
    objects = render(f"image.digest={DIGEST}")
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    assert (
        pod["securityContext"]["runAsNonRoot"]
        and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (10001, 10001)
    assert "USER 10001:10001" in (REPO / "Dockerfile").read_text(), "the image runs as the chart does"
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["image"].endswith(DIGEST)
    [token] = [v for v in pod["volumes"] if v["name"] == "api-token"]
    assert token["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600
    [account] = [o for o in objects if o["kind"] == "ServiceAccount"]
    assert account["automountServiceAccountToken"] is False


def test_checkov_finds_nothing_in_the_chart(tmp_path):
    (tmp_path / "chart.yaml").write_text(yaml.safe_dump_all(render(f"image.digest={DIGEST}")))
    report = checkov(tmp_path)
    failed = [(r["check_id"], r["resource"]) for r in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] >= 100
    skipped = [r["check_id"] for r in report["results"]["skipped_checks"]]
    assert skipped == ["CKV_K8S_155"]  # justified in templates/rbac.yaml


def test_checkov_finds_nothing_in_what_the_operator_renders_for_tenants(tmp_path):
    write_tenant_manifests(tmp_path)
    report = checkov(tmp_path)
    failed = [(r["check_id"], r["resource"]) for r in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["skipped"] == 0 and report["summary"]["passed"] >= 150


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = [sys.prefix + "/bin/hadolint", str(REPO / "Dockerfile")]
    result = subprocess.run(hadolint, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
