"""A fault-injecting HTTP proxy in front of the real kube-apiserver: it answers some of the
operator's writes itself with 429 (and a Retry-After) or 409, and forwards everything else,
watch streams included, byte for byte. Each forwarded request goes upstream on its own
connection with `Connection: close`, so that every request passes through the fault decision."""

import asyncio
import hashlib
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
RETRY_AFTER_SECONDS = 1


@dataclass
class Seen:
    """One request as the proxy saw it, and the fault it answered with (0 when forwarded)."""

    at: float
    method: str
    target: str
    fault: int
    agent: str = ""
    body: str = ""  # a digest: a retry sends the very same request again

    @property
    def request(self) -> tuple[str, str, str, str]:
        return (self.method, self.target, self.agent, self.body)


@dataclass
class FaultPlan:
    """Faults for writes whose User-Agent starts with `agent`: every `every`-th such write gets a
    fault, alternating 429 and 409, never twice in a row for the same request."""

    agent: str
    every: int = 3
    seen: list[Seen] = field(default_factory=list)
    writes: int = 0

    def decide(self, method: str, target: str, user_agent: str) -> int:
        if method not in WRITES or not user_agent.startswith(self.agent):
            return 0
        self.writes += 1
        previous = next((s for s in reversed(self.seen) if (s.method, s.target) == (method, target)), None)
        if self.writes % self.every or (previous is not None and previous.fault):
            return 0
        faults = sum(1 for s in self.seen if s.fault)
        return 429 if faults % 2 == 0 else 409


def fault_response(status: int) -> bytes:
    reason = {429: "TooManyRequests", 409: "Conflict"}[status]
    body = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": f"injected by the chaos proxy: {reason}",
            "reason": reason,
            "code": status,
        }
    ).encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if status == 429:
        head.append(f"Retry-After: {RETRY_AFTER_SECONDS}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def rewrite_head(lines: list[str]) -> bytes:
    """The request head with any Connection header replaced by `Connection: close`."""
    kept = [line for line in lines if not line.lower().startswith(("connection:", "keep-alive:"))]
    return ("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")


class FaultProxy:
    """Runs in a thread of its own with its own event loop; `url` is what a kubeconfig points at."""

    def __init__(self, upstream: str, ca_file: Path, plan: FaultPlan) -> None:
        host, port = upstream.removeprefix("https://").split(":")
        self.upstream = (host, int(port))
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.plan = plan
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(10)

    def stop(self) -> None:
        """Ends every open stream (watches included) before the loop closes, so nothing leaks."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        # A handler task can still appear while the loop winds down (an accept in flight when the
        # server closed); left pending, it was destroyed with the loop, and pytest failed the test
        # on its unclosed socket. The loop runs once more, here, until no task is left.
        self.loop.run_until_complete(self._finish_tasks())
        self.loop.close()

    async def _shutdown(self) -> None:
        self.server.close()
        await self._finish_tasks()
        await self.server.wait_closed()

    async def _finish_tasks(self) -> None:
        """Cancels every other task of the loop and waits for them, until none is left."""
        while tasks := [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _serve(self) -> None:
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[:-2]
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            agent, digest = headers.get("user-agent", ""), hashlib.sha256(body).hexdigest()[:16]
            with self.lock:
                fault = self.plan.decide(method, target, agent)
                self.plan.seen.append(Seen(time.monotonic(), method, target, fault, agent, digest))
            if fault:
                writer.write(fault_response(fault))
                await writer.drain()
                return
            await self._forward(rewrite_head(lines) + body, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            # Not awaiting wait_closed(): when the client had already gone, that wait could stay
            # pending for ever, and the collector then destroyed the task (an unclosed-socket
            # warning that pytest turns into a failure). The loop finishes the close on its own.
            writer.close()

    async def _forward(self, request: bytes, writer: asyncio.StreamWriter) -> None:
        host, port = self.upstream
        up_reader, up_writer = await asyncio.open_connection(
            host, port, ssl=self.context, server_hostname=host
        )
        try:
            up_writer.write(request)
            await up_writer.drain()
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()


def retry_gaps(seen: list[Seen], status: int) -> dict[str, float]:
    """For each request answered with `status`, the seconds until the same request (same client,
    same body) came again, by target."""
    gaps = {}
    for i, first in enumerate(seen):
        if first.fault != status:
            continue
        again = next((s for s in seen[i + 1 :] if s.request == first.request), None)
        if again is not None:
            gaps[f"{first.method} {first.target} #{i}"] = again.at - first.at
    return gaps
