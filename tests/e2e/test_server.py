"""A live `fastcoder serve` (each engine) driven by the official openai client, and httpx for raw
cases. Greedy outputs are compared token for token with the same model run in-process."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from fastcoder.sampling_params import SamplingParams

MESSAGES = [{"role": "user", "content": "the cat sat on the"}]
NO_EOS = {"ignore_eos": True}                     # exact lengths from a random model


def greedy(reference, prompt_ids: list[int], max_tokens: int, **kwargs):
    params = SamplingParams(temperature=0, max_tokens=max_tokens, **kwargs)
    return reference.generate(prompt_ids, params)[0].outputs[0]


def chat_ids(reference, messages=MESSAGES) -> list[int]:
    return reference.chat_prompt_ids(messages)


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    assert httpx.get(f"{server.base_url}/health").json() == {"status": "ok"}


def test_chat_greedy_exact(client, reference):
    reply = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=8,
                                           temperature=0, extra_body=NO_EOS)
    expected = greedy(reference, chat_ids(reference), 8, ignore_eos=True)
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == expected.text
    assert choice.finish_reason == "length"
    num_prompt = len(chat_ids(reference))
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens,
            reply.usage.total_tokens) == (num_prompt, 8, num_prompt + 8)


def test_max_completion_tokens_and_eos(client, reference):
    reply = client.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0,
                                           max_completion_tokens=300)
    expected = greedy(reference, chat_ids(reference), 300)
    assert reply.choices[0].message.content == expected.text
    assert reply.choices[0].finish_reason == expected.finish_reason
    # A stop token is generated (and counted) but not shown.
    num_stop = 1 if expected.finish_reason == "stop" else 0
    assert reply.usage.completion_tokens == len(expected.token_ids) + num_stop


def test_chat_streaming_invariants(server, client):
    stream = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=6,
                                            temperature=0, stream=True, extra_body=NO_EOS,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert not chunks[0].choices[0].delta.content
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert all(c.usage is None for c in chunks[:-1])
    finishes = [c.choices[0].finish_reason for c in chunks[:-1]]
    assert finishes[-1] == "length" and all(f is None for f in finishes[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    whole = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=6,
                                           temperature=0, extra_body=NO_EOS)
    assert text == whole.choices[0].message.content

    body = {"messages": MESSAGES, "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body) as response:
        events = [line for line in response.iter_lines() if line]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert all("usage" not in json.loads(e[6:]) for e in events[:-1])    # not asked for


def test_chat_logprobs_top_n(client, reference):
    reply = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=5,
                                           temperature=0, logprobs=True, top_logprobs=3,
                                           extra_body=NO_EOS)
    content = reply.choices[0].logprobs.content
    expected = greedy(reference, chat_ids(reference), 5, ignore_eos=True)
    assert [bytes(c.bytes) for c in content] == [reference.tokenizer.token_bytes(t)
                                                 for t in expected.token_ids]
    for entry in content:
        assert len(entry.top_logprobs) == 3 and entry.logprob <= 0
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob)   # greedy = best


def test_stop_strings_cut_the_text(client, reference):
    prompt = "on the other hand"
    text = greedy(reference, reference.tokenizer.encode(prompt), 16, ignore_eos=True).text
    stop = text[4:6]
    assert len(stop) == 2, "greedy continuation too short for this test"
    for stop_param in (stop, ["\x00never", stop]):
        reply = client.completions.create(model="tiny", prompt=prompt, max_tokens=16,
                                          temperature=0, stop=stop_param, extra_body=NO_EOS)
        assert reply.choices[0].text == text[:text.find(stop)]
        assert reply.choices[0].finish_reason == "stop"


def test_completion_suffix_is_fill_in_the_middle(client, reference):
    prefix, suffix = "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"
    fim_ids = reference.tokenizer.build_fim_prompt(prefix, suffix)
    reply = client.completions.create(model="tiny", prompt=prefix, suffix=suffix, max_tokens=4,
                                      temperature=0, echo=True, extra_body=NO_EOS)
    assert reply.usage.prompt_tokens == len(fim_ids)
    echoed = reference.tokenizer.decode(fim_ids)
    assert echoed.startswith("<|fim_prefix|>def add") and "<|fim_middle|>" in echoed
    assert reply.choices[0].text == echoed + greedy(reference, fim_ids, 4, ignore_eos=True).text


def test_token_prompt_echo_and_logprobs(client, reference):
    ids = reference.tokenizer.encode("the cat")
    reply = client.completions.create(model="tiny", prompt=ids, max_tokens=3, temperature=0,
                                      echo=True, logprobs=2, extra_body=NO_EOS)
    expected = greedy(reference, ids, 3, ignore_eos=True)
    assert reply.choices[0].text == "the cat" + expected.text
    assert reply.usage.prompt_tokens == len(ids)
    logprobs = reply.choices[0].logprobs
    assert len(logprobs.token_logprobs) == 3 and all(len(t) <= 2 for t in logprobs.top_logprobs)
    assert logprobs.tokens == [reference.tokenizer.decode([t]) for t in expected.token_ids]


def test_n_choices_are_seeded_and_counted(client):
    def ask():
        return client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=6,
                                              n=2, temperature=1.0, seed=5, extra_body=NO_EOS)
    first, second = ask(), ask()
    assert [c.index for c in first.choices] == [0, 1]
    assert first.usage.completion_tokens == 12
    assert [c.message.content for c in first.choices] == [c.message.content
                                                          for c in second.choices]


def test_n_choices_stream_each_with_role_and_finish(client):
    stream = client.completions.create(model="tiny", prompt="the", max_tokens=4, n=2,
                                       temperature=0, stream=True, extra_body=NO_EOS)
    finishes: dict[int, list] = {0: [], 1: []}
    for chunk in stream:
        finishes[chunk.choices[0].index].append(chunk.choices[0].finish_reason)
    assert finishes == {i: [None, None, None, "length"] for i in (0, 1)}


def test_batch_of_prompts(client, reference):
    prompts = ["the cat", "hello there"]
    reply = client.completions.create(model="tiny", prompt=prompts, max_tokens=4, temperature=0,
                                      extra_body=NO_EOS)
    encoded = [reference.tokenizer.encode(p) for p in prompts]
    assert [c.text for c in reply.choices] == [greedy(reference, ids, 4, ignore_eos=True).text
                                               for ids in encoded]
    assert reply.usage.prompt_tokens == sum(map(len, encoded))


def test_greedy_same_alone_and_among_eight(client, reference):
    prompts = [f"request {i}: the quick brown fox" for i in range(8)]

    def complete(prompt):
        return client.completions.create(model="tiny", prompt=prompt, max_tokens=24,
                                         temperature=0, extra_body=NO_EOS).choices[0].text
    alone = [complete(p) for p in prompts]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(complete, prompts))
    assert together == alone
    assert alone == [greedy(reference, reference.tokenizer.encode(p), 24, ignore_eos=True).text
                     for p in prompts]


def test_prefix_cache_hit_in_usage_and_metrics(server, client):
    long_prompt = "shared system context " * 12           # > 3 blocks of 16 tokens
    before = server.metrics()["fastcoder_prefix_cache_hits_tokens"]
    first = client.completions.create(model="tiny", prompt=long_prompt, max_tokens=2,
                                      temperature=0)
    second = client.completions.create(model="tiny", prompt=long_prompt, max_tokens=2,
                                       temperature=0)
    num_prompt = first.usage.prompt_tokens
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    # batched: full 16-token blocks, never the whole prompt; serial: all but the last token.
    expected = (num_prompt - 1) // 16 * 16 if server.engine == "batched" else num_prompt - 1
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


@pytest.mark.parametrize("path, body, field", [
    ("completions", {"prompt": "x", "temperature": -1}, "temperature"),
    ("completions", {"prompt": "x", "top_p": 0}, "top_p"),
    ("completions", {"prompt": "x", "max_tokens": "many"}, "max_tokens"),
    ("completions", {"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ("completions", {"max_tokens": 2}, "prompt"),
    ("completions", {"prompt": [1, "a"]}, "prompt"),
    ("completions", {"prompt": [100000]}, "prompt"),
    ("completions", {"prompt": "x", "stop": ["ok", ""]}, "stop[1]"),
    ("chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ("chat/completions", {"messages": MESSAGES, "presence_penalty": 3}, "presence_penalty"),
    ("chat/completions", {"messages": MESSAGES, "n": 17}, "n"),
])
def test_bad_fields_are_400_naming_the_field(server, path, body, field):
    response = httpx.post(f"{server.base_url}/v1/{path}", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == field and field in error["message"]
    assert error["type"] == "invalid_request_error"


def test_malformed_json_is_400(server):
    response = httpx.post(f"{server.base_url}/v1/chat/completions", content=b"{",
                          headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_context_overflow_names_both_numbers(server, reference):
    response = httpx.post(f"{server.base_url}/v1/completions",
                          json={"prompt": "the cat", "max_tokens": 5000})
    assert response.status_code == 400
    error = response.json()["error"]
    num_prompt = len(reference.tokenizer.encode("the cat"))
    assert error["param"] == "max_tokens" and error["code"] == "context_length_exceeded"
    assert f"context is 1024 tokens; the prompt has {num_prompt} tokens and max_tokens is " \
           f"5000 ({num_prompt + 5000} in all)" in error["message"]
    too_long = httpx.post(f"{server.base_url}/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "z" * 1100}]})
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "messages"


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=MESSAGES, max_tokens=2)
    assert "gpt-9" in str(info.value)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-9", prompt="x", max_tokens=2)


def test_missing_or_wrong_key_is_401(guarded_server):
    url = f"{guarded_server.base_url}/v1/models"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert httpx.get(f"{guarded_server.base_url}/health").status_code == 200
    wrong = openai.OpenAI(base_url=f"{guarded_server.base_url}/v1", api_key="nope",
                          max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.completions.create(model="tiny", prompt="x", max_tokens=1)


def test_queue_full_is_429_with_retry_after(guarded_server):
    url = f"{guarded_server.base_url}/v1/completions"
    headers = {"Authorization": "Bearer s3cret"}
    body = {"prompt": "go on", "max_tokens": 1000, "ignore_eos": True}
    responses: list[httpx.Response] = []

    def send():
        responses.append(httpx.post(url, json=body, headers=headers, timeout=120))
    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and statuses[-1] == 429
    rejected = next(r for r in responses if r.status_code == 429)
    assert int(rejected.headers["retry-after"]) >= 1
    assert rejected.json()["error"]["code"] == "queue_full"
    assert all(r.json()["usage"]["completion_tokens"] == 1000 for r in responses
               if r.status_code == 200)
