"""kopf's webhook server, moved to a thread of its own: requests are answered there, not on the
operator's event loop, and stopping the operator stops the thread."""

import asyncio
import json
import socket
import threading
import urllib.request
from typing import Any

import kopf

from aifactory_operator.handlers.kopf_settings import DiffBaseOfChangeHandledKinds
from aifactory_operator.handlers.webhook_thread import WebhookServerThread


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post(url: str) -> dict[str, Any]:
    review = {"request": {"uid": "1", "operation": "CREATE", "userInfo": {}, "object": {}}}
    request = urllib.request.Request(url, json.dumps(review).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.load(response))


def test_admission_requests_are_answered_on_the_webhook_thread_while_the_loop_is_busy():
    answered_on: list[str] = []

    async def serve(request: Any, **_: Any) -> dict[str, Any]:
        answered_on.append(threading.current_thread().name)
        return {"response": {"uid": request["request"]["uid"], "allowed": True}}

    async def scenario() -> dict[str, Any]:
        port = free_port()
        server = WebhookServerThread(kopf.WebhookServer(addr="127.0.0.1", port=port, insecure=True))
        configs = server(serve)
        config = await configs.__anext__()
        # The operator's loop is blocked for the whole request: only another loop can answer it.
        answer = post(f"{config['url'].rstrip('/')}/probe")
        await configs.aclose()
        return answer

    threads_before = set(threading.enumerate())
    answer = asyncio.run(scenario())
    assert answer["response"]["allowed"] is True
    assert answered_on == ["admission-webhook"]
    assert not [t for t in threading.enumerate() if t not in threads_before and t.name == "admission-webhook"]


def test_the_diff_base_is_built_only_for_kinds_with_change_handlers():
    storage = DiffBaseOfChangeHandledKinds({"AIFactory"}, prefix="aifactory.dev")
    factory = kopf.Body({"kind": "AIFactory", "metadata": {"name": "f"}, "spec": {"tenants": []}})
    pod = kopf.Body({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}})
    assert storage.build(body=factory) == {"spec": {"tenants": []}}
    assert storage.build(body=pod) == {}
