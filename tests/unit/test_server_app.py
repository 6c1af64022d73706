"""The FastAPI app in-process (TestClient) over a SerialEngine on the tiny model, or a scripted
engine where a failure must be provoked: response shapes, exact usage, error mapping."""
from __future__ import annotations

import copy
import json

import pytest
from fastapi.testclient import TestClient

from fastcoder.engine.async_engine import AsyncEngine
from fastcoder.engine.linear_backends import linear_factory
from fastcoder.engine.runner import ModelRunner
from fastcoder.engine.serial_engine import SerialEngine
from fastcoder.loader.gguf_file import open_gguf
from fastcoder.sampling_params import SamplingParams
from fastcoder.server.app import create_app
from fastcoder.server.errors import field_path
from fastcoder.tokenizer.tokenizer import Tokenizer
from tests.unit.test_server_async_engine import ScriptedEngine

MESSAGES = [{"role": "user", "content": "the cat"}]


@pytest.fixture(scope="module")
def tokenizer(tiny_gguf):
    return Tokenizer.from_metadata(open_gguf(tiny_gguf).metadata)


@pytest.fixture(scope="module")
def engine(tiny_gguf, tokenizer):
    async_engine = AsyncEngine(SerialEngine(
        ModelRunner(open_gguf(tiny_gguf), 64, linear_factory("reference", 1)), tokenizer))
    yield async_engine
    async_engine.shutdown()


def client_for(engine, tokenizer, **kwargs) -> TestClient:
    return TestClient(create_app(engine, tokenizer, "tiny", **kwargs),
                      raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(engine, tokenizer):
    return client_for(engine, tokenizer)


def test_chat_usage_and_text_match_the_engine(client, tiny_gguf, tokenizer):
    prompt_ids = tokenizer.encode(tokenizer.apply_chat_template(MESSAGES), add_special_tokens=False)
    reference = SerialEngine(ModelRunner(open_gguf(tiny_gguf), 64, linear_factory("reference", 1)),
                             tokenizer)
    reference.add_request("ref", prompt_ids, SamplingParams(temperature=0, max_tokens=5,
                                                            ignore_eos=True))
    expected = "".join(d.text for _ in range(5) for d in reference.step())
    body = {"model": "tiny", "messages": MESSAGES, "max_tokens": 5, "temperature": 0,
            "ignore_eos": True}
    reply = client.post("/v1/chat/completions", json=body).json()
    again = client.post("/v1/chat/completions", json=body).json()
    assert reply["object"] == "chat.completion" and reply["id"].startswith("chatcmpl-")
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": expected}
    assert again["choices"][0]["message"]["content"] == expected
    assert reply["usage"]["prompt_tokens"] == len(prompt_ids)
    assert reply["usage"]["completion_tokens"] == 5
    assert reply["usage"]["total_tokens"] == len(prompt_ids) + 5
    assert reply["choices"][0]["finish_reason"] == "length"
    # The serial engine reuses the previous identical prompt but its last token.
    assert again["usage"]["prompt_tokens_details"]["cached_tokens"] == len(prompt_ids) - 1


def test_streamed_chunks_concatenate_to_the_whole(client):
    body = {"messages": MESSAGES, "max_tokens": 6, "temperature": 0, "ignore_eos": True}
    whole = client.post("/v1/chat/completions", json=body).json()
    response = client.post("/v1/chat/completions", json={
        **body, "stream": True, "stream_options": {"include_usage": True}})
    lines = [l for l in response.text.split("\n\n") if l]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(l.removeprefix("data: ")) for l in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["choices"] == []
    usage = {k: chunks[-1]["usage"][k] for k in ("prompt_tokens", "completion_tokens")}
    assert usage == {"prompt_tokens": whole["usage"]["prompt_tokens"], "completion_tokens": 6}
    assert len({c["id"] for c in chunks}) == 1


def test_fim_without_fim_tokens_is_400(engine, tokenizer):
    no_fim = copy.copy(tokenizer)
    no_fim.fim = None
    response = client_for(engine, no_fim).post("/v1/completions", json={
        "prompt": "def f(", "suffix": "\n", "max_tokens": 2})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "fim_not_supported"


def test_chat_without_template_is_400(engine, tokenizer):
    no_template = copy.copy(tokenizer)
    no_template._chat_template = None
    response = client_for(engine, no_template).post("/v1/chat/completions", json={
        "messages": MESSAGES, "max_tokens": 2})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "chat_template_missing"


def test_api_key_guards_v1_but_not_health_or_metrics(engine, tokenizer):
    client = client_for(engine, tokenizer, api_key="k")
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer kk"}).status_code == 401
    denied = client.post("/v1/completions", json={"prompt": "x"})
    assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
    assert denied.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/v1/models", headers={"Authorization": "Bearer k"}).status_code == 200
    assert client.get("/health").status_code == 200
    metrics = client.get("/metrics").text
    assert 'fastcoder_requests_total{status="401"} 3' in metrics
    assert 'fastcoder_requests_total{status="200"} 1' in metrics


def test_context_overflow_names_prompt_limit_and_total(client, tokenizer):
    response = client.post("/v1/completions", json={"prompt": "the cat", "max_tokens": 70})
    num_prompt = len(tokenizer.encode("the cat"))
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == "max_tokens"
    assert error["code"] == "context_length_exceeded"
    assert (f"context is 64 tokens; the prompt has {num_prompt} tokens and max_tokens is 70 "
            f"({num_prompt + 70} in all)") in error["message"]


@pytest.mark.parametrize("body, param", [
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"messages": MESSAGES, "stop": ["ok", ""]}, "stop[1]"),
    ({"messages": MESSAGES, "top_logprobs": 21, "logprobs": True}, "top_logprobs"),
    ({"messages": MESSAGES, "n": 0}, "n"),
    ({"messages": MESSAGES, "seed": 2**64}, "seed"),
    ({"messages": "hi"}, "messages"),
    ({}, "messages"),
])
def test_invalid_fields_are_400_naming_them(client, body, param):
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert f"'{param}'" in response.json()["error"]["message"]


@pytest.mark.parametrize("content", [b"{oops", b"[1, 2]", b"", b"null"])
def test_body_that_is_not_a_json_object_is_400(client, content):
    response = client.post("/v1/completions", content=content,
                           headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["param"] is None


def test_unknown_route_and_model(client):
    assert client.get("/v1/nothing").json()["error"]["type"] == "not_found_error"
    response = client.post("/v1/completions", json={"model": "other", "prompt": "x"})
    assert response.status_code == 404 and response.json()["error"]["param"] == "model"
    assert client.get("/v1/models/other").status_code == 404
    assert client.get("/v1/models/tiny").json()["max_model_len"] == 64


def test_bug_is_a_500_in_openai_shape(tokenizer):
    broken = copy.copy(tokenizer)
    broken.encode = None                                  # a TypeError inside the route
    async_engine = AsyncEngine(ScriptedEngine())
    try:
        response = client_for(async_engine, broken).post("/v1/completions", json={"prompt": "x"})
    finally:
        async_engine.shutdown()
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"


def test_failure_mid_stream_ends_with_an_error_event_and_done(tokenizer):
    async_engine = AsyncEngine(ScriptedEngine(fail_on_step=2))
    try:
        response = client_for(async_engine, tokenizer).post("/v1/completions", json={
            "prompt": "x", "max_tokens": 3, "stream": True})
    finally:
        async_engine.shutdown()
    events = [e.removeprefix("data: ") for e in response.text.split("\n\n") if e]
    assert response.status_code == 200 and events[-1] == "[DONE]"
    assert json.loads(events[0])["choices"][0]["text"] == "b"
    assert json.loads(events[-2])["error"]["type"] == "server_error"


def test_field_path_skips_union_tags():
    body = {"prompt": ["a", ""], "messages": [{"role": "x"}]}
    assert field_path(("body", "prompt", "list[str]", 1), body, False) == "prompt[1]"
    assert field_path(("body", "messages", 0, "role"), body, False) == "messages[0].role"
    assert field_path(("body", "model"), body, True) == "model"
    assert field_path(("body", "model"), body, False) is None
