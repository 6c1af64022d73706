"""AsyncEngine: runs an engine_api.Engine's step loop in one background thread (torch work off
the event loop) and streams each request's deltas to an asyncio queue."""
from __future__ import annotations

import asyncio
import itertools
import threading
from typing import AsyncIterator

from fastcoder.engine.engine_api import Engine, RequestDelta
from fastcoder.errors import FastcoderError
from fastcoder.sampling_params import SamplingParams


class QueueFullError(FastcoderError):
    http_status = 429
    error_type = "rate_limit_exceeded"
    code = "queue_full"


class AsyncEngine:
    def __init__(self, engine: Engine, max_queue: int = 256):
        self.engine = engine
        self.max_queue = max_queue
        self._lock = threading.Lock()              # guards the engine between loop and callers
        self._wakeup = threading.Event()
        self._queues: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self._ids = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="fastcoder-engine", daemon=True)
        self._thread.start()

    @property
    def max_model_len(self) -> int:
        return self.engine.max_model_len

    def new_request_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    async def generate(self, request_id: str, prompt_ids: list[int], params: SamplingParams,
                       num_logprobs: int | None = None) -> AsyncIterator[RequestDelta]:
        """Deltas until the one with a finish_reason. Closing the iterator early (a client that
        disconnected) aborts the request and frees its KV blocks at once."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            if self.engine.stats()["num_waiting"] >= self.max_queue:
                raise QueueFullError(f"server busy: {self.max_queue} requests already waiting")
            self.engine.add_request(request_id, prompt_ids, params, num_logprobs)
            self._queues[request_id] = (loop, queue)
        self._wakeup.set()
        finished = False
        try:
            while True:
                delta = await queue.get()
                if isinstance(delta, BaseException):
                    raise delta
                yield delta
                if delta.finish_reason is not None:
                    finished = True
                    return
        finally:
            if not finished:
                self.abort(request_id)

    def abort(self, request_id: str) -> None:
        with self._lock:
            self._queues.pop(request_id, None)
            self.engine.abort_request(request_id)

    def stats(self) -> dict[str, float]:
        with self._lock:
            return self.engine.stats()

    def shutdown(self) -> None:
        """Aborts what is still running and stops the loop thread."""
        with self._lock:
            for request_id in list(self._queues):
                self.engine.abort_request(request_id)
                loop, queue = self._queues.pop(request_id)
                loop.call_soon_threadsafe(queue.put_nowait, RequestDelta(
                    request_id, (), "", "abort"))
            self._stopped = True
        self._wakeup.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped:
            with self._lock:
                busy = self.engine.has_unfinished_requests()
                if busy:
                    try:
                        deltas = self.engine.step()
                    except Exception as exc:           # a bug: fail the requests, keep serving
                        self._fail_all(exc)
                        deltas = []
                    for delta in deltas:
                        target = self._queues.get(delta.request_id)
                        if target is not None:
                            target[0].call_soon_threadsafe(target[1].put_nowait, delta)
                            if delta.finish_reason is not None:
                                self._queues.pop(delta.request_id, None)
            if not busy:
                self._wakeup.wait(timeout=0.5)
                self._wakeup.clear()

    def _fail_all(self, exc: Exception) -> None:
        for request_id, (loop, queue) in list(self._queues.items()):
            self.engine.abort_request(request_id)
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        self._queues.clear()
