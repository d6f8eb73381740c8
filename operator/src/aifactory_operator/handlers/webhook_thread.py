"""kopf's webhook server on a thread and event loop of its own.

kopf serves admission requests on the operator's event loop, so under load each answer waited
behind whatever watch events the loop was processing: 25-70 ms per webhook call through
kube-apiserver during a 600-job run, on every TrainingJob, Job and Pod creation. On its own loop an
answer waits at most for the interpreter's thread switch. The handlers only read kopf's indexes;
copying an index's store with list() is one step of the interpreter, so the reads need no lock.
"""

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import kopf

logger = logging.getLogger(__name__)


class WebhookServerThread:
    """Runs `server` (a kopf webhook server) on a daemon thread; yields its client configurations
    on the operator's loop, as kopf expects of `settings.admission.server`."""

    def __init__(self, server: kopf.WebhookServer) -> None:
        self.server = server

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:
        operator_loop = asyncio.get_running_loop()
        configs: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.new_event_loop()

        async def serve() -> None:
            async with self.server as server:
                async for config in server(fn):
                    operator_loop.call_soon_threadsafe(configs.put_nowait, config)

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(serve())
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("The webhook server stopped")
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="admission-webhook", daemon=True)
        thread.start()
        try:
            while True:
                yield await configs.get()
        finally:
            # RuntimeError: the loop has closed already, the server having stopped on its own.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(cancel_all, loop)
            await asyncio.to_thread(thread.join, 10)


def cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()
