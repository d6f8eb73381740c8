"""Starting, finding and stopping the control-plane processes (I/O; no Kubernetes logic)."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def is_port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_process(argv: list[str], log_path: Path) -> int:
    """Starts `argv` in its own session (so Ctrl-C in a terminal does not reach it); returns its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return process.pid


def is_running(pid: int, executable: str) -> bool:
    """True when `pid` is alive and still runs `executable` (a recycled pid does not count)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return cmdline == executable and state != "Z"


def stop_process(pid: int, executable: str, *, grace_seconds: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after the grace period; reaps the process if it is our child."""
    if not is_running(pid, executable):
        _reap(pid)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_running(pid, executable):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        _reap(pid)
        if not is_running(pid, executable):
            return
        time.sleep(0.1)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
