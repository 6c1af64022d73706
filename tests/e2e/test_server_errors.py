"""OpenAI-style 4xx bodies from a live server: bad fields, malformed JSON, context overflow,
unknown model, API key, full queue."""
from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest

from tests.e2e.expected import MESSAGES


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
