"""A container registry on 127.0.0.1 standing in for a sovereign site's: CNCF distribution, built
from its Go module at the version pinned in hack/versions.env, storing into a folder of the test's.

`connections` reads an strace log and says where a traced command connected, so a test can assert
that nothing left 127.0.0.1.
"""

import re
import subprocess
import time
import urllib.request
from pathlib import Path

from aifactory_operator.devcluster.binaries import read_versions

REPO = Path(__file__).resolve().parents[1]
MODULE = "github.com/distribution/distribution/v3/cmd/registry"


def registry_binary() -> Path:
    version = read_versions(REPO)["REGISTRY_VERSION"]
    tool = REPO / "hack" / "build-go-tool.sh"
    result = subprocess.run(
        ["bash", str(tool), "registry", MODULE, version, "3"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the registry failed: {result.stderr[-2000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


class LocalRegistry:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.address = f"127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = self.root / "config.yml"
        self.root.mkdir(parents=True, exist_ok=True)
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.root / 'data'}}}}}\n"
            f"http: {{addr: {self.address}}}\n"
        )
        binary = registry_binary()
        with (self.root / "registry.log").open("wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen([str(binary), "serve", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the registry did not answer on {self.address}; see {self.root / 'registry.log'}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def connections(strace_log: Path) -> set[str]:
    """Every IP address a traced process tried to connect() or sendto(), from `strace -f -e
    trace=connect,sendto,sendmsg`; UNIX sockets (the Docker engine's) are not addresses."""
    found: set[str] = set()
    for line in strace_log.read_text(errors="replace").splitlines():
        if "connect(" in line or "sendto(" in line or "sendmsg(" in line:
            found |= {v4 or v6 for v4, v6 in ADDRESS.findall(line)}
    return found


def traced(argv: list[str], log: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    """Runs `argv` under strace, recording every network connection it or its children make."""
    command = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(log), *argv]
    return subprocess.run(command, capture_output=True, text=True, **kwargs)
