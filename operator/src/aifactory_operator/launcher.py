"""Starting and stopping the operator as a child process: the demo and the end-to-end tests run
it exactly as the container image does, through the `aifactory run` entry point."""

import os
import signal
import subprocess
import sys
from pathlib import Path


class OperatorProcess:
    """`aifactory run` in a child process, logging to a file."""

    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        *,
        verbose: bool = True,
        metrics_port: int = 0,
        args: tuple[str, ...] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.verbose = verbose
        self.metrics_port = metrics_port
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aifactory_operator.cli",
                    "run",
                    *(["--verbose"] if self.verbose else []),
                    f"--metrics-port={self.metrics_port}",
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (kopf shuts down gracefully), SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def peak_rss_kib(self) -> int:
        """The operator's peak resident memory (VmHWM), while it runs."""
        return peak_rss_kib(self.process.pid) if self.process is not None else 0

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the operator has used so far, from /proc."""
        return cpu_seconds(self.process.pid) if self.process is not None else 0.0

    def kill(self) -> None:
        """SIGKILL: a crash, for tests of what survives one."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def interrupt_on_sigterm() -> None:
    """Makes SIGTERM (`timeout`, CI, `kill`) raise KeyboardInterrupt as Ctrl-C does, so that the
    finally blocks which stop the operator and the control plane run on either; by default Python
    dies on SIGTERM at once and leaves both running."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def peak_rss_kib(pid: int) -> int:
    """A running process's peak resident memory (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
