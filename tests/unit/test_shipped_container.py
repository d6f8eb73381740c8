"""The `docker run` that stands in for the chart's pod keeps what the pod spec says."""

from pathlib import Path

import pytest
from charttools import render
from shipped_container import ProjectedToken, docker_run_argv

TOKEN_DIR = Path("/run/token")


@pytest.fixture(scope="module")
def argv() -> list[str]:
    [deployment] = [o for o in render(namespace="aif-system") if o["kind"] == "Deployment"]
    return docker_run_argv(
        deployment, "aifactory-operator:x", "op", TOKEN_DIR, "aif-system", 16443, pod_name="op-7d9f-x2"
    )


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_the_container_runs_as_the_pod_does(argv):
    assert pairs(argv, "--user") == ["10001:10001"]
    assert "--read-only" in argv
    assert pairs(argv, "--cap-drop") == ["ALL"]
    assert pairs(argv, "--security-opt") == ["no-new-privileges"]
    assert pairs(argv, "--memory") == ["1g"]


def test_the_container_gets_the_charts_env_args_and_volumes(argv):
    env = dict(e.split("=", 1) for e in pairs(argv, "--env"))
    assert env["AIFACTORY_NAMESPACE"] == "aif-system"  # from the fieldRefs
    assert env["AIFACTORY_POD_NAME"] == "op-7d9f-x2"
    assert env["AIFACTORY_WEBHOOK_SERVICE"] == "aifactory-operator-webhook"
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "16443")
    assert pairs(argv, "--tmpfs") == ["/tmp:rw,size=16m,mode=1777"]
    assert pairs(argv, "--volume") == [f"{TOKEN_DIR}:/var/run/secrets/kubernetes.io/serviceaccount:ro"]
    image = argv.index("aifactory-operator:x")
    assert argv[image + 1 :] == ["--liveness=http://0.0.0.0:8080/healthz", "--metrics-port=8000"]


def test_a_rotated_token_replaces_the_old_one_in_one_step(tmp_path):
    volume = ProjectedToken(tmp_path / "token")
    volume.write("first", b"ca", "ns")
    first_version = (volume.folder / "..data").resolve()
    volume.write("second", b"ca", "ns")
    assert (volume.folder / "token").read_text() == "second"
    assert not first_version.exists(), "the old version folder is removed"
    assert sorted(p.name for p in volume.folder.iterdir() if not p.name.startswith("..2")) == [
        "..data",
        "ca.crt",
        "namespace",
        "token",
    ]
