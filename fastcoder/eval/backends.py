"""Where completions come from: fastcoder in-process (one request at a time on `LLM`, or many on
the continuous-batching engine) or any OpenAI-compatible server over HTTP. All three take the
same chat messages and decode greedily, so they are scored on equal terms."""
from __future__ import annotations

import itertools
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import httpx

from fastcoder.errors import FastcoderError
from fastcoder.kernels.qmatmul import release_threads
from fastcoder.sampling_params import SamplingParams

REQUEST_TIMEOUT_S = 900          # one greedy reply of up to --max-tokens on a busy CPU
READY_TIMEOUT_S = 300            # a server answering 503 may still be loading its model
LISTEN_TIMEOUT_S = 5             # nothing listening: a server started a moment ago, or a bad URL


class EvalBackendError(FastcoderError):
    """The model server failed or could not be reached."""
    http_status = 502
    error_type = "server_error"
    code = "eval_backend_failed"


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    num_tokens: int | None           # generated tokens, when the backend reports them
    finish_reason: str | None        # "stop" | "length"


class Backend(Protocol):
    name: str                        # model name as reported in the summary

    def complete(self, messages: list[dict], max_tokens: int) -> Completion:
        """One greedy chat reply; callable from several threads at once."""

    def close(self) -> None: ...


def greedy(max_tokens: int) -> SamplingParams:
    return SamplingParams(temperature=0, max_tokens=max_tokens)


class LocalBackend:
    """fastcoder's `LLM` (single-sequence loop), one request at a time."""

    def __init__(self, model: str, *, threads: int | None, max_model_len: int | None,
                 speculative: str | None = None):
        from fastcoder.engine.llm import LLM
        self.llm = LLM(model, max_model_len=max_model_len, threads=threads, kernels="quant",
                       speculative=speculative)
        self.name = self.llm.model_path.stem
        self._lock = threading.Lock()        # LLM holds one KV cache: requests take turns

    def complete(self, messages: list[dict], max_tokens: int) -> Completion:
        # One delta per generated token, the stop token included, as servers count usage.
        with self._lock:
            deltas = list(self.llm.chat_stream(messages, greedy(max_tokens)))
        return Completion("".join(d.text for d in deltas), len(deltas),
                          deltas[-1].finish_reason if deltas else None)

    def close(self) -> None:
        pass


class LocalBatchedBackend:
    """fastcoder's continuous-batching LLMEngine (what `fastcoder serve` runs), in-process: the
    calling threads queue requests and wait; one engine thread steps all of them together."""

    def __init__(self, model: str, *, threads: int | None, max_model_len: int | None,
                 max_num_seqs: int, speculative: str | None = None):
        from fastcoder.engine.linear_backends import linear_factory
        from fastcoder.engine.llm import DEFAULT_MAX_MODEL_LEN
        from fastcoder.engine.llm_engine import EngineConfig, LLMEngine
        from fastcoder.engine.threads import set_threads
        from fastcoder.loader.gguf_file import open_gguf
        from fastcoder.engine.speculative import as_config
        from fastcoder.store.cache import resolve_model_path
        from fastcoder.tokenizer.tokenizer import Tokenizer
        spec_config = as_config(speculative)           # a bad spec fails before the load
        path = resolve_model_path(model)
        num_threads = set_threads(threads)
        gguf = open_gguf(path)
        self.tokenizer = Tokenizer.from_metadata(gguf.metadata)
        context = min(max_model_len or DEFAULT_MAX_MODEL_LEN, gguf.config.context_length)
        self.engine = LLMEngine(gguf, self.tokenizer, linear_factory("quant", num_threads),
                                EngineConfig(max_model_len=context, max_num_seqs=max_num_seqs),
                                speculative=spec_config)
        self.name = path.stem
        self._inbox: queue.Queue = queue.Queue()      # (request id, prompt ids, params, future)
        self._ids = itertools.count()
        self._closed = False
        release_threads()         # this thread's OpenMP pool would slow every engine-thread kernel
        self._thread = threading.Thread(target=self._run, name="eval-engine", daemon=True)
        self._thread.start()

    def complete(self, messages: list[dict], max_tokens: int) -> Completion:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        prompt_ids = self.tokenizer.encode(text, add_special_tokens=False)
        future: Future = Future()
        self._inbox.put((f"eval-{next(self._ids)}", prompt_ids, greedy(max_tokens), future))
        return future.result()

    def close(self) -> None:
        self._closed = True
        self._inbox.put(None)
        self._thread.join()

    def _run(self) -> None:
        """The only code that touches the engine."""
        pending: dict[str, tuple[list[str], list[int], Future]] = {}
        while not self._closed:
            try:
                # Block only when idle; while requests run, just pick up new ones between steps.
                item = self._inbox.get(block=not pending)
                while item is not None:
                    request_id, prompt_ids, params, future = item
                    try:
                        self.engine.add_request(request_id, prompt_ids, params)
                        pending[request_id] = ([], [], future)
                    except FastcoderError as exc:
                        future.set_exception(exc)
                    item = self._inbox.get_nowait()
            except queue.Empty:
                pass
            if not pending:
                continue
            try:
                deltas = self.engine.step()
            except BaseException as exc:              # a bug: fail every caller, now and later
                for _, _, future in pending.values():
                    future.set_exception(exc)
                self._fail_from_now_on(exc)
                return
            for delta in deltas:
                texts, token_ids, future = pending[delta.request_id]
                texts.append(delta.text)
                token_ids.extend(delta.new_token_ids)
                if delta.finish_reason is not None:
                    del pending[delta.request_id]
                    future.set_result(Completion("".join(texts), len(token_ids),
                                                 delta.finish_reason))

    def _fail_from_now_on(self, exc: BaseException) -> None:
        while (item := self._inbox.get()) is not None:
            item[3].set_exception(exc)


class ServerBackend:
    """Any OpenAI-compatible server: POST {url}/v1/chat/completions, temperature 0."""

    def __init__(self, url: str, *, api_key: str | None = None, model_name: str | None = None,
                 ready_timeout_s: float = READY_TIMEOUT_S,
                 listen_timeout_s: float = LISTEN_TIMEOUT_S):
        base = url.rstrip("/")
        self.base_url = base[:-3] if base.endswith("/v1") else base
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers,
                                   timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=10))
        self._wait_ready(ready_timeout_s, listen_timeout_s)
        self.name = model_name or self._first_model_id()

    def _wait_ready(self, ready_timeout_s: float, listen_timeout_s: float) -> None:
        """Polls GET /health: llama-server and fastcoder answer 503 while the model loads (waited
        for up to ready_timeout_s); a server started a moment ago may not listen yet (waited for
        up to listen_timeout_s, then the request below reports the connection error). Any other
        answer, a 404 from a server without /health included, counts as ready."""
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            try:
                status = self.client.get("/health").status_code
            except httpx.TransportError:
                if waited >= listen_timeout_s:
                    return
            else:
                if status not in (502, 503):
                    return
                if waited >= ready_timeout_s:
                    raise EvalBackendError(f"{self.base_url}/health still answers {status} "
                                           f"after {ready_timeout_s:g} s")
            time.sleep(0.5)

    def _first_model_id(self) -> str:
        models = self._request("GET", "/v1/models").get("data") or []
        if not models:
            raise EvalBackendError(f"{self.base_url}/v1/models lists no model: pass --model-name")
        return models[0]["id"]

    def complete(self, messages: list[dict], max_tokens: int) -> Completion:
        body = {"model": self.name, "messages": messages, "temperature": 0, "top_p": 1,
                "max_tokens": max_tokens, "stream": False}
        reply = self._request("POST", "/v1/chat/completions", json=body)
        choice = reply["choices"][0]
        usage = reply.get("usage") or {}
        return Completion(choice["message"].get("content") or "",
                          usage.get("completion_tokens"), choice.get("finish_reason"))

    def _request(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise EvalBackendError(f"{self.base_url}{path}: {exc}") from exc
        if response.status_code != 200:
            raise EvalBackendError(f"{self.base_url}{path} answered {response.status_code}: "
                                   f"{response.text[:300]}")
        return response.json()

    def close(self) -> None:
        self.client.close()


def local_backend(model: str, *, threads: int | None, max_model_len: int | None,
                  concurrency: int, speculative: str | None) -> Backend:
    """Concurrency 1 runs on `LLM`; more on the batching engine (speculative decoding works in
    both)."""
    if concurrency > 1:
        return LocalBatchedBackend(model, threads=threads, max_model_len=max_model_len,
                                   max_num_seqs=concurrency, speculative=speculative)
    return LocalBackend(model, threads=threads, max_model_len=max_model_len,
                        speculative=speculative)
