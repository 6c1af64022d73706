"""A live `fastcoder serve` driven by the official openai client (and httpx for raw cases)."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from fastcoder.loader.gguf_file import open_gguf
from fastcoder.tokenizer.tokenizer import Tokenizer

MESSAGES = [{"role": "user", "content": "the cat sat on the"}]


@pytest.fixture(scope="module")
def tokenizer(server_model):
    return Tokenizer.from_metadata(open_gguf(server_model).metadata)


def chat_prompt_len(tokenizer) -> int:
    text = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True)
    return len(tokenizer.encode(text, add_special_tokens=False))


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert httpx.get(f"{server.base_url}/health").json() == {"status": "ok"}


def test_chat_non_streaming_usage(client, tokenizer):
    reply = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=8,
                                           temperature=0)
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert reply.usage.prompt_tokens == chat_prompt_len(tokenizer)
    assert 1 <= reply.usage.completion_tokens <= 8
    assert choice.finish_reason == ("length" if reply.usage.completion_tokens == 8 else "stop")


def test_chat_streaming_invariants(client):
    stream = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=6,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1
    finishes = [c.choices[0].finish_reason for c in chunks[:-1] if c.choices]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1] if c.choices)
    whole = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=6,
                                           temperature=0)
    assert text == whole.choices[0].message.content


def test_completion_with_suffix_uses_fim_layout(client, tokenizer):
    prefix, suffix = "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"
    reply = client.completions.create(model="tiny", prompt=prefix, suffix=suffix, max_tokens=4,
                                      temperature=0)
    assert reply.usage.prompt_tokens == len(tokenizer.build_fim_prompt(prefix, suffix))


def test_completion_echo_and_token_prompt(client, tokenizer):
    ids = tokenizer.encode("the cat")
    reply = client.completions.create(model="tiny", prompt=ids, max_tokens=3, temperature=0,
                                      echo=True, logprobs=2)
    assert reply.choices[0].text.startswith("the cat")
    assert reply.usage.prompt_tokens == len(ids)
    assert len(reply.choices[0].logprobs.token_logprobs) == reply.usage.completion_tokens


def test_n_choices(client):
    reply = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=4, n=2,
                                           temperature=1.0, seed=5)
    assert [c.index for c in reply.choices] == [0, 1]


def test_greedy_same_alone_and_among_eight(client):
    prompts = [f"request {i}: the quick brown fox" for i in range(8)]

    def complete(prompt):
        return client.completions.create(model="tiny", prompt=prompt, max_tokens=24,
                                         temperature=0).choices[0].text
    alone = [complete(p) for p in prompts]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(complete, prompts))
    assert together == alone


def test_prefix_cache_hit_in_usage_and_metrics(server, client):
    long_prompt = "shared system context " * 12           # > 3 blocks of 16 tokens
    before = server.metrics().get("fastcoder_prefix_cache_hits_tokens", 0)
    first = client.completions.create(model="tiny", prompt=long_prompt, max_tokens=2,
                                      temperature=0)
    second = client.completions.create(model="tiny", prompt=long_prompt, max_tokens=2,
                                       temperature=0)
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert cached == (first.usage.prompt_tokens - 1) // 16 * 16 and cached > 0
    assert server.metrics()["fastcoder_prefix_cache_hits_tokens"] - before >= cached


def test_disconnect_frees_blocks(server):
    body = {"model": "tiny", "prompt": "a long story", "max_tokens": 900, "stream": True,
            "ignore_eos": True}
    with httpx.stream("POST", f"{server.base_url}/v1/completions", json=body) as response:
        lines = response.iter_lines()
        for _ in range(4):
            next(lines)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = server.metrics()
        if m["fastcoder_num_requests_running"] == 0 and m["fastcoder_kv_blocks_used"] == 0:
            break
        time.sleep(0.1)
    assert m["fastcoder_num_requests_running"] == 0 and m["fastcoder_kv_blocks_used"] == 0


@pytest.mark.parametrize("body, field", [
    ({"prompt": "x", "temperature": -1}, "temperature"),
    ({"prompt": "x", "top_p": 0}, "top_p"),
    ({"prompt": "x", "max_tokens": "many"}, "max_tokens"),
    ({"max_tokens": 2}, "prompt"),
])
def test_bad_fields_are_400_naming_the_field(server, body, field):
    response = httpx.post(f"{server.base_url}/v1/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field and field in error["message"]


def test_context_overflow_names_both_numbers(server):
    response = httpx.post(f"{server.base_url}/v1/completions",
                          json={"prompt": "the cat", "max_tokens": 5000})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "5000" in message and "1024" in message


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=MESSAGES, max_tokens=2)
    assert "gpt-9" in str(info.value)


def test_missing_or_wrong_key_is_401(guarded_server):
    url = f"{guarded_server.base_url}/v1/models"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_queue_full_is_429_with_retry_after(guarded_server):
    url = f"{guarded_server.base_url}/v1/completions"
    headers = {"Authorization": "Bearer s3cret"}
    body = {"prompt": "go on", "max_tokens": 900, "ignore_eos": True}
    statuses, retry_after = [], []

    def send():
        r = httpx.post(url, json=body, headers=headers, timeout=120)
        statuses.append(r.status_code)
        retry_after.append(r.headers.get("retry-after"))
    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert 429 in statuses and 200 in statuses
    assert retry_after[statuses.index(429)] is not None
