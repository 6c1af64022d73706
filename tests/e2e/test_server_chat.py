"""Chat completions on a live `fastcoder serve` (each engine) through the official openai client;
greedy outputs are compared token for token with the same model run in-process."""
from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.expected import MESSAGES, NO_EOS, chat_ids, greedy


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
