"""AsyncEngine: an engine_api.Engine driven by ONE background thread (all torch work off the
event loop), fed by asyncio callers.

Only the engine thread touches the engine. Callers hand it commands through a thread-safe inbox
(add, abort) and never wait on a step in progress, except `add_request`, which awaits the
engine's verdict on the request (so a route can still answer 400/429 before it starts streaming).
Each step's deltas go to the asyncio queue of the request that made them, via
`loop.call_soon_threadsafe`. `stats()` reads a snapshot the thread refreshes after each step."""
from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from typing import AsyncIterator, Callable, Sequence

from fastcoder.engine.engine_api import Engine, RequestDelta
from fastcoder.errors import FastcoderError
from fastcoder.kernels.qmatmul import release_threads
from fastcoder.sampling_params import SamplingParams

log = logging.getLogger("fastcoder.engine")
NewRequest = tuple[str, list[int], SamplingParams, int | None]   # id, prompt ids, params, logprobs


class QueueFullError(FastcoderError):
    """Too many requests are already waiting: come back later (HTTP 429 with Retry-After)."""
    http_status = 429
    error_type = "rate_limit_exceeded"
    code = "queue_full"
    retry_after_s = 1


class EngineShutdownError(FastcoderError):
    http_status = 503
    error_type = "server_error"
    code = "shutting_down"


class RequestStream:
    """The deltas of one or more requests (a completion's n choices) in the order the engine
    produced them. Ends after every request has finished; `close()` aborts the unfinished ones,
    so a client that went away frees its KV blocks at the next step boundary."""

    def __init__(self, engine: "AsyncEngine", queue: asyncio.Queue, request_ids: Sequence[str]):
        self._engine = engine
        self._queue = queue
        self.request_ids = tuple(request_ids)
        self._unfinished = set(request_ids)

    def __aiter__(self) -> "RequestStream":
        return self

    async def __anext__(self) -> RequestDelta:
        if not self._unfinished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, BaseException):          # the engine failed: nothing more comes
            self._unfinished.clear()
            raise item
        if item.finish_reason is not None:
            self._unfinished.discard(item.request_id)
        return item

    @property
    def finished(self) -> bool:
        return not self._unfinished

    def close(self) -> None:
        for request_id in self._unfinished:
            self._engine.abort(request_id)
        self._unfinished.clear()

    def __del__(self) -> None:                       # a stream dropped before it was drained
        if getattr(self, "_unfinished", None):
            self.close()


class AsyncEngine:
    def __init__(self, engine: Engine, max_queue: int = 256):
        """max_queue: requests allowed to wait (admitted, not yet running); more get 429."""
        self.engine = engine
        self.max_queue = max_queue
        self._inbox: deque[Callable[[], None]] = deque()
        self._wakeup = threading.Event()
        self._lock = threading.Lock()                 # guards the snapshot and pending count
        self._snapshot = dict(engine.stats())
        self._num_pending = 0                         # submitted, not yet seen by the thread
        self._routes: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = {}
        self._ids = itertools.count()
        self._stopping = False
        self._drain_deadline = 0.0
        release_threads()         # this thread's OpenMP pool would slow every engine-thread kernel
        self._thread = threading.Thread(target=self._run, name="fastcoder-engine", daemon=True)
        self._thread.start()

    @property
    def max_model_len(self) -> int:
        return self.engine.max_model_len

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def new_request_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    # -- callers (event loop) ---------------------------------------------------------------
    async def add_requests(self, requests: Sequence[NewRequest]) -> RequestStream:
        """Admits all of `requests` or none: raises QueueFullError when the waiting queue is
        full, or the engine's own typed error (ContextLengthError, InvalidParameterError)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._stopping:
                raise EngineShutdownError("the server is shutting down")
            if self._snapshot.get("num_waiting", 0) + self._num_pending >= self.max_queue:
                raise QueueFullError(f"server busy: {self.max_queue} requests already waiting; "
                                     f"retry shortly")
            self._num_pending += len(requests)
        queue: asyncio.Queue = asyncio.Queue()
        admitted: asyncio.Future = loop.create_future()

        def add() -> None:                            # runs on the engine thread
            added: list[str] = []
            error: BaseException | None = None
            try:
                for request_id, prompt_ids, params, num_logprobs in requests:
                    self.engine.add_request(request_id, prompt_ids, params, num_logprobs)
                    self._routes[request_id] = (loop, queue)
                    added.append(request_id)
            except BaseException as exc:               # typed input errors, or a bug
                for request_id in added:
                    self._drop(request_id)
                error = exc
            finally:
                # Counted as waiting before the caller hears back, so no check sees it nowhere.
                stats = dict(self.engine.stats())
                with self._lock:
                    self._num_pending -= len(requests)
                    self._snapshot = stats
            _resolve(loop, admitted, error)

        self._submit(add)
        stream = RequestStream(self, queue, [r[0] for r in requests])
        try:
            error = await admitted
        except asyncio.CancelledError:                 # caller gone while waiting: undo
            stream.close()
            raise
        if error is not None:
            stream._unfinished.clear()
            raise error
        return stream

    async def add_request(self, request_id: str, prompt_ids: list[int], params: SamplingParams,
                          num_logprobs: int | None = None) -> RequestStream:
        return await self.add_requests([(request_id, prompt_ids, params, num_logprobs)])

    async def generate(self, request_id: str, prompt_ids: list[int], params: SamplingParams,
                       num_logprobs: int | None = None) -> AsyncIterator[RequestDelta]:
        """Deltas until the one with a finish_reason. Closing the iterator early (a client that
        disconnected, a cancelled task) aborts the request."""
        stream = await self.add_request(request_id, prompt_ids, params, num_logprobs)
        try:
            async for delta in stream:
                yield delta
        finally:
            stream.close()

    def abort(self, request_id: str) -> None:
        """Thread-safe and non-blocking; the engine frees the request before its next step."""
        self._submit(lambda: self._drop(request_id))

    def stats(self) -> dict[str, float]:
        """Engine gauges as of the last step (engine_api.Engine.stats keys)."""
        with self._lock:
            return dict(self._snapshot)

    def shutdown(self, drain_timeout_s: float = 0.0) -> None:
        """Stops taking requests, lets running ones finish for up to drain_timeout_s seconds,
        then aborts the rest (their streams end with finish_reason "abort")."""
        with self._lock:
            self._stopping = True
        self._drain_deadline = time.monotonic() + drain_timeout_s
        self._wakeup.set()
        self._thread.join(timeout=drain_timeout_s + 30)

    # -- engine thread ----------------------------------------------------------------------
    def _submit(self, command: Callable[[], None]) -> None:
        self._inbox.append(command)
        self._wakeup.set()

    def _drop(self, request_id: str) -> None:
        self._routes.pop(request_id, None)
        self.engine.abort_request(request_id)

    def _run(self) -> None:
        while True:
            if self._inbox:
                while self._inbox:
                    command = self._inbox.popleft()
                    try:
                        command()
                    except Exception:                 # a bug in an abort: keep serving
                        log.exception("engine command failed")
                self._refresh_stats()                 # count new requests before a long step
            if self._stopping and time.monotonic() >= self._drain_deadline:
                self._abort_all()
            busy = self.engine.has_unfinished_requests()
            if busy:
                self._step()
                self._refresh_stats()
            elif self._stopping and not self._inbox:
                return
            else:
                self._wakeup.wait(timeout=1.0)
                self._wakeup.clear()

    def _refresh_stats(self) -> None:
        stats = dict(self.engine.stats())
        with self._lock:
            self._snapshot = stats

    def _step(self) -> None:
        try:
            deltas = self.engine.step()
        except Exception as exc:                      # a bug: fail these requests, keep serving
            log.exception("engine step failed; failing %d requests", len(self._routes))
            for request_id, (loop, queue) in list(self._routes.items()):
                self._drop(request_id)
                _deliver(loop, queue, exc)
            return
        for delta in deltas:
            route = self._routes.get(delta.request_id)
            if route is None:
                continue                              # aborted while the step ran
            _deliver(*route, delta)
            if delta.finish_reason is not None:
                del self._routes[delta.request_id]

    def _abort_all(self) -> None:
        for request_id, (loop, queue) in list(self._routes.items()):
            self._drop(request_id)
            _deliver(loop, queue, RequestDelta(request_id, (), "", "abort"))


def _deliver(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, item) -> None:
    try:
        loop.call_soon_threadsafe(queue.put_nowait, item)
    except RuntimeError:                               # that event loop is closed
        pass


def _resolve(loop: asyncio.AbstractEventLoop, future: asyncio.Future, result) -> None:
    def set_result() -> None:
        if not future.done():
            future.set_result(result)
    try:
        loop.call_soon_threadsafe(set_result)
    except RuntimeError:
        pass
