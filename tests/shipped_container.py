"""Runs the operator's image the way the chart's Deployment runs it, with docker on this host.

A pod spec says how its container runs. This module turns the chart's pod spec, as helm renders
it, into a `docker run` that keeps the same things:
- user and group, read-only root, dropped capabilities, no privilege escalation, seccomp;
- the env (with the `fieldRef`s to the pod's namespace and name resolved) and the args;
- the memory volume at /tmp, the projected API token and the memory limit.

Only the network differs. No kubelet gives the container a pod network here, so it uses the
host's: the API server at 127.0.0.1, and its webhook Service reached at the pod's address, which
the test puts on a local interface (docs/image.md says why).

A ProjectedToken writes the token volume as the kubelet does (an atomic swap of a `..data` link),
so the operator sees a rotation exactly as it would in a pod.
"""

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def docker_run_argv(
    deployment: dict[str, Any],
    image: str,
    name: str,
    token_dir: Path,
    namespace: str,
    apiserver_port: int,
    extra_env: dict[str, str] | None = None,
    pod_name: str = "",
) -> list[str]:
    """`docker run` for the Deployment's one container, from its rendered pod spec, standing in
    for the pod `pod_name`; `extra_env` is what a test adds on top (as a values override would)."""
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    argv = ["docker", "run", "--detach", "--name", name, "--network", "host"]
    argv += ["--user", f"{security['runAsUser']}:{security['runAsGroup']}"]
    if security.get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    for capability in security.get("capabilities", {}).get("drop", []):
        argv += ["--cap-drop", capability]
    if security.get("allowPrivilegeEscalation") is False:
        argv += ["--security-opt", "no-new-privileges"]
    if memory := container.get("resources", {}).get("limits", {}).get("memory"):
        argv += ["--memory", memory.replace("Gi", "g").replace("Mi", "m")]
    argv += volume_flags(pod, container, token_dir)
    # What the kubelet puts in every container's environment, enableServiceLinks or not.
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(apiserver_port)}
    for item in container.get("env", []):
        env[item["name"]] = resolve_env(item, namespace, pod_name)
    env.update(extra_env or {})
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    return [*argv, image, *container.get("args", [])]


def resolve_env(item: dict[str, Any], namespace: str, pod_name: str) -> str:
    if "value" in item:
        return str(item["value"])
    field = item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    known = {"metadata.namespace": namespace, "metadata.name": pod_name}
    if known.get(field):
        return known[field]
    raise ValueError(f"env {item['name']}: only values and {', '.join(known)} are known here, not {item}")


def volume_flags(pod: dict[str, Any], container: dict[str, Any], token_dir: Path) -> list[str]:
    """The memory emptyDirs as tmpfs, the projected token as a read-only bind of `token_dir`."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    flags = []
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit", "64Mi").replace("Mi", "m").replace("Gi", "g")
            flags += ["--tmpfs", f"{mount['mountPath']}:rw,size={size},mode=1777"]
        elif "projected" in volume and mount["mountPath"] == TOKEN_MOUNT:
            flags += ["--volume", f"{token_dir}:{mount['mountPath']}:ro"]
        else:
            raise ValueError(f"volume {mount['name']}: no way to give it to a container here")
    return flags


@dataclass
class ProjectedToken:
    """The API token volume, laid out as the kubelet's atomic writer does: the files are links
    into `..data`, which points at a timestamped folder; a new token is a new folder and one
    rename of the link, so a reader never sees half of it."""

    folder: Path

    def write(self, token: str, ca: bytes, namespace: str) -> None:
        self.folder.mkdir(mode=0o755, exist_ok=True)
        self.folder.chmod(0o755)  # the container's user is not the folder's owner
        version = self.folder / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9}"
        version.mkdir(mode=0o755)
        for file, content in (("token", token.encode()), ("ca.crt", ca), ("namespace", namespace.encode())):
            (version / file).write_bytes(content)
            (version / file).chmod(0o644)
        data, staged = self.folder / "..data", self.folder / "..data_tmp"
        previous = data.resolve() if data.is_symlink() else None
        staged.unlink(missing_ok=True)
        staged.symlink_to(version.name)
        os.replace(staged, data)
        for file in ("token", "ca.crt", "namespace"):
            if not (self.folder / file).is_symlink():
                (self.folder / file).symlink_to(f"..data/{file}")
        if previous is not None:
            for old in previous.iterdir():
                old.unlink()
            previous.rmdir()


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def logs(name: str) -> str:
    result = docker("logs", name, check=False)
    return result.stdout + result.stderr


def remove(name: str) -> None:
    docker("rm", "--force", name, check=False)
