"""Prometheus text metrics: requests by HTTP status, prompt/generation token counters, TTFT and
inter-token latency histograms, and the engine's gauges (running, waiting, KV blocks, prefix-cache
hit rate). `CountRequests` is the ASGI middleware that feeds the status counter."""
from __future__ import annotations

import threading
from collections import Counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    def __init__(self, name: str, help_text: str):
        self.name, self.help_text = name, help_text
        self.counts = [0] * len(LATENCY_BUCKETS)
        self.total = 0.0
        self.num = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
        self.total += seconds
        self.num += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} histogram"]
        lines += [f'{self.name}_bucket{{le="{b}"}} {c}' for b, c in zip(LATENCY_BUCKETS, self.counts)]
        lines += [f'{self.name}_bucket{{le="+Inf"}} {self.num}',
                  f"{self.name}_sum {self.total:.6f}", f"{self.name}_count {self.num}"]
        return lines


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests_by_status: Counter[int] = Counter()
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.ttft = Histogram("fastcoder_time_to_first_token_seconds", "Time to first token.")
        self.itl = Histogram("fastcoder_inter_token_latency_seconds", "Time between tokens.")

    def record_request(self, status: int) -> None:
        with self._lock:
            self.requests_by_status[status] += 1

    def record_tokens(self, num_prompt: int, num_generated: int) -> None:
        with self._lock:
            self.prompt_tokens += num_prompt
            self.generation_tokens += num_generated

    def observe_ttft(self, seconds: float) -> None:
        with self._lock:
            self.ttft.observe(seconds)

    def observe_itl(self, seconds: float) -> None:
        with self._lock:
            self.itl.observe(seconds)

    def render(self, engine_stats: dict[str, float]) -> str:
        with self._lock:
            lines = ["# HELP fastcoder_requests_total Requests by HTTP status.",
                     "# TYPE fastcoder_requests_total counter"]
            lines += [f'fastcoder_requests_total{{status="{s}"}} {n}'
                      for s, n in sorted(self.requests_by_status.items())]
            lines += ["# TYPE fastcoder_prompt_tokens_total counter",
                      f"fastcoder_prompt_tokens_total {self.prompt_tokens}",
                      "# TYPE fastcoder_generation_tokens_total counter",
                      f"fastcoder_generation_tokens_total {self.generation_tokens}"]
            lines += self.ttft.render() + self.itl.render()
        queries = engine_stats.get("prefix_cache_queries", 0)
        hits = engine_stats.get("prefix_cache_hits", 0)
        gauges = {
            "fastcoder_num_requests_running": engine_stats.get("num_running", 0),
            "fastcoder_num_requests_waiting": engine_stats.get("num_waiting", 0),
            "fastcoder_kv_blocks_used": engine_stats.get("kv_blocks_used", 0),
            "fastcoder_kv_blocks_total": engine_stats.get("kv_blocks_total", 0),
            "fastcoder_prefix_cache_queries_tokens": queries,
            "fastcoder_prefix_cache_hits_tokens": hits,
            "fastcoder_prefix_cache_hit_rate": hits / queries if queries else 0.0,
        }
        if "spec_draft_tokens" in engine_stats:
            # Speculative decoding: counters since start, and the two ratios dashboards want.
            for key in ("spec_draft_tokens", "spec_accepted_tokens", "spec_steps"):
                lines += [f"# TYPE fastcoder_{key}_total counter",
                          f"fastcoder_{key}_total {engine_stats.get(key, 0)}"]
            gauges["fastcoder_spec_acceptance_rate"] = engine_stats.get("spec_acceptance_rate", 0)
            gauges["fastcoder_spec_mean_accepted_length"] = \
                engine_stats.get("spec_mean_accepted_length", 0)
        for name, value in gauges.items():
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"


class CountRequests:
    """Counts each /v1/ response by status, including 401s from the auth layer and 500s."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.record_request(status)
