"""Starting, finding and stopping the control-plane processes (I/O; no Kubernetes logic)."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

# Children started by this process, kept so that they are reaped (no zombies, no ResourceWarning);
# processes started by an earlier `aifactory cluster up` are found through the state file instead.
_children: dict[int, "subprocess.Popen[bytes]"] = {}


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
    _children[process.pid] = process
    return process.pid


def is_running(pid: int, executable: str) -> bool:
    """True when `pid` is alive and still runs `executable` (a recycled pid does not count)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    command, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :][:1]
    if state in ("Z", "X"):
        return False
    if not cmdline:
        # Right after exec the kernel may not have filled in cmdline yet; the command name in
        # stat (at most 15 characters) is already the new program's.
        return command == Path(executable).name[:15]
    return cmdline == executable


def stop_process(pid: int, executable: str, *, grace_seconds: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after the grace period. Our own children are waited for (reaped);
    processes an earlier command started are watched through /proc until they are gone."""
    child = _children.pop(pid, None)
    if child is not None:
        _stop_child(child, grace_seconds)
        return
    if is_running(pid, executable):
        os.kill(pid, signal.SIGTERM)
        if not _wait_until_gone(pid, executable, grace_seconds):
            os.kill(pid, signal.SIGKILL)
            _wait_until_gone(pid, executable, 5.0)


def _stop_child(child: "subprocess.Popen[bytes]", grace_seconds: float) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _wait_until_gone(pid: int, executable: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not is_running(pid, executable):
            return True
        time.sleep(0.1)
    return False
