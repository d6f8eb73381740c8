"""Local runs cannot cross-talk: the webhook port follows AIFACTORY_PORT_BASE, an operator refuses an
address another process serves, and SIGTERM stops what a run started."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from aifactory_operator.handlers.admission_control import WebhookSettings
from aifactory_operator.listen import is_served


def listen_like_kopf() -> socket.socket:
    """A listener on a free loopback port bound the way kopf's webhook server binds (aiohttp through
    asyncio: SO_REUSEADDR, which asyncio sets on POSIX, and the SO_REUSEPORT kopf asks for)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


def test_the_webhook_listens_ten_above_the_port_base(settings_from):
    assert WebhookSettings.from_settings(settings_from({})).listen_port == 16450
    settings = WebhookSettings.from_settings(settings_from({"AIFACTORY_PORT_BASE": "30000"}))
    assert (settings.listen_host, settings.listen_port, settings.url) == (
        "127.0.0.1",
        30010,
        "https://127.0.0.1:30010",
    )


def test_an_explicit_listen_address_wins_over_the_port_base(settings_from):
    env = {"AIFACTORY_PORT_BASE": "30000", "AIFACTORY_WEBHOOK_LISTEN": "0.0.0.0:9443"}
    assert WebhookSettings.from_settings(settings_from(env)).listen_port == 9443


def test_a_port_another_process_listens_on_with_reuse_port_is_served():
    with listen_like_kopf() as server:
        port = server.getsockname()[1]
        assert is_served("127.0.0.1", port)
        assert is_served("0.0.0.0", port)
    assert not is_served("127.0.0.1", port)


def test_a_port_nobody_listens_on_is_free_even_with_connections_in_time_wait():
    with listen_like_kopf() as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first, so its end waits in TIME_WAIT
        client.close()
    assert not is_served("127.0.0.1", port)


def test_the_operator_refuses_to_start_on_a_served_webhook_address_with_one_line():
    with listen_like_kopf() as server:
        port = server.getsockname()[1]
        env = {**os.environ, "AIFACTORY_WEBHOOK_LISTEN": f"127.0.0.1:{port}", "KUBECONFIG": "/nonexistent"}
        result = subprocess.run(
            [sys.executable, "-m", "aifactory_operator.cli", "run"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port} is already served by another process" in lines[0]


CHILD = textwrap.dedent(
    """
    import subprocess, sys, time
    from aifactory_operator.launcher import interrupt_on_sigterm
    interrupt_on_sigterm()
    helper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        print(helper.pid, flush=True)
        time.sleep(120)
    finally:
        helper.terminate()
        helper.wait()
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_run_stopped_by_a_signal_stops_the_processes_it_started(signum):
    # As from a terminal: a shell without job control starts background commands with SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler (seen when CI itself ran in
    # the background).
    run = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert run.stdout is not None
    helper = int(run.stdout.readline())
    run.send_signal(signum)
    run.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and is_alive(helper):
        time.sleep(0.1)
    assert not is_alive(helper)


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
