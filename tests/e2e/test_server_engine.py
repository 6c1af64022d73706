"""What the engine shows through the server: prefix-cache hits in usage and /metrics, latency
histograms, and blocks freed when a client disconnects."""
from __future__ import annotations

import time

import httpx

from fastcoder.kv.kv_cache_manager import DEFAULT_BLOCK_SIZE
from tests.e2e.expected import MESSAGES, NO_EOS, chat_ids


def test_prefix_cache_hit_in_usage_and_metrics(server, client):
    long_prompt = "shared system context " * 12           # many KV blocks
    before = server.metrics()["fastcoder_prefix_cache_hits_tokens"]
    first = client.completions.create(model="tiny", prompt=long_prompt, max_tokens=2,
                                      temperature=0)
    second = client.completions.create(model="tiny", prompt=long_prompt, max_tokens=2,
                                       temperature=0)
    num_prompt = first.usage.prompt_tokens
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    # batched: full blocks, never the whole prompt; serial: all but the last token.
    bs = DEFAULT_BLOCK_SIZE
    expected = (num_prompt - 1) // bs * bs if server.engine == "batched" else num_prompt - 1
    assert cached == expected
    metrics = server.metrics()
    assert metrics["fastcoder_prefix_cache_hits_tokens"] - before == cached
    assert 0 < metrics["fastcoder_prefix_cache_hit_rate"] <= 1


def test_metrics_count_requests_tokens_and_latencies(server, client, reference):
    before = server.metrics()
    client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=5,
                                   temperature=0, extra_body=NO_EOS)
    httpx.post(f"{server.base_url}/v1/completions", json={"prompt": "x", "top_p": 7})
    after = server.metrics()
    delta = {k: after[k] - before.get(k, 0) for k in after}
    assert delta['fastcoder_requests_total{status="200"}'] == 1
    assert delta['fastcoder_requests_total{status="400"}'] == 1
    assert delta["fastcoder_prompt_tokens_total"] == len(chat_ids(reference))
    assert delta["fastcoder_generation_tokens_total"] == 5
    assert delta["fastcoder_time_to_first_token_seconds_count"] == 1
    assert delta["fastcoder_inter_token_latency_seconds_count"] == 4
    assert after["fastcoder_num_requests_running"] == 0
    assert after["fastcoder_kv_blocks_total"] > 0


def test_disconnect_mid_stream_frees_the_request(server):
    body = {"model": "tiny", "prompt": "a long story", "max_tokens": 1000, "stream": True,
            "ignore_eos": True}
    with httpx.stream("POST", f"{server.base_url}/v1/completions", json=body) as response:
        lines = response.iter_lines()
        for _ in range(4):
            next(lines)
        assert server.metrics()["fastcoder_num_requests_running"] == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = server.metrics()
        if m["fastcoder_num_requests_running"] == 0 and m["fastcoder_kv_blocks_used"] == 0:
            break
        time.sleep(0.05)
    assert m["fastcoder_num_requests_running"] == 0 and m["fastcoder_kv_blocks_used"] == 0
    assert m["fastcoder_generation_tokens_total"] > 0
