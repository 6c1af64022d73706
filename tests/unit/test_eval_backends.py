"""The three backends on a tiny random model: the in-process loop, the in-process batching
engine and a live `fastcoder serve` over HTTP must give the same greedy replies."""
from __future__ import annotations

import json

import pytest

from fastcoder.cli.main import main
from fastcoder.eval.backends import (EvalBackendError, LocalBackend, LocalBatchedBackend,
                                     ServerBackend, local_backend)
from fastcoder.eval.humaneval import load_problems
from fastcoder.eval.runner import run_humaneval
from fastcoder.eval.sandbox import Sandbox, SandboxLimits
from tests.e2e.server_process import ServerProcess
from tests.helpers.tiny_gguf import write_tiny_qwen2

CONTEXT = 2048                   # byte-level tiny vocab: a HumanEval prompt is ~1k tokens
MAX_TOKENS = 8
API_KEY = "s3cret"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_qwen2(tmp_path_factory.mktemp("eval") / "tiny.gguf",
                            context_length=CONTEXT)


@pytest.fixture(scope="module")
def problems():
    return load_problems(3)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox(SandboxLimits(timeout_s=10))


@pytest.fixture(scope="module")
def server(tiny_model):
    process = ServerProcess(tiny_model, "--api-key", API_KEY).start()
    try:
        yield process
    finally:
        process.stop()


def score(backend, problems, sandbox, path, concurrency=1) -> list[tuple]:
    """(task id, reply, generated tokens) per problem, from the run's JSONL."""
    try:
        run_humaneval(backend, problems, output=path, backend_label="test",
                      concurrency=concurrency, max_tokens=MAX_TOKENS, sandbox=sandbox,
                      progress=False)
    finally:
        backend.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [(r["task_id"], r["completion"], r["num_tokens"]) for r in rows]


@pytest.fixture(scope="module")
def expected(tiny_model, problems, sandbox, tmp_path_factory):
    """The single-sequence loop's replies, one request at a time."""
    backend = LocalBackend(str(tiny_model), threads=1, max_model_len=CONTEXT)
    return score(backend, problems, sandbox, tmp_path_factory.mktemp("local") / "r.jsonl")


def test_local_replies_are_greedy_and_capped(expected, problems):
    assert [task_id for task_id, _, _ in expected] == [p.task_id for p in problems]
    assert all(0 < num_tokens <= MAX_TOKENS for _, _, num_tokens in expected)


def test_batching_engine_gives_the_same_replies(tiny_model, problems, sandbox, expected,
                                                tmp_path):
    backend = LocalBatchedBackend(str(tiny_model), threads=1, max_model_len=CONTEXT,
                                  max_num_seqs=3)
    assert score(backend, problems, sandbox, tmp_path / "r.jsonl", concurrency=3) == expected


def test_server_backend_gives_the_same_replies(server, problems, sandbox, expected, tmp_path):
    backend = ServerBackend(f"{server.base_url}/v1", api_key=API_KEY)
    assert backend.name == "tiny"                        # the first id of /v1/models
    assert score(backend, problems, sandbox, tmp_path / "r.jsonl", concurrency=2) == expected


def test_server_backend_wrong_key_is_a_typed_error(server):
    with pytest.raises(EvalBackendError, match="answered 401"):
        ServerBackend(server.base_url, api_key="wrong")


def test_cli_scores_a_server_and_prints_one_json_summary(server, tmp_path, capsys):
    output = tmp_path / "cli.jsonl"
    argv = ["eval", "humaneval", "--server", server.base_url, "--api-key", API_KEY,
            "--limit", "2", "--max-tokens", str(MAX_TOKENS), "--output", str(output), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["model"], summary["num_problems"], summary["output"]) == ("tiny", 2,
                                                                              str(output))
    assert summary["pass_at_1"] == summary["num_passed"] / 2
    assert len(output.read_text().splitlines()) == 2


def test_speculative_replies_equal_plain_ones_alone_and_batched(tiny_model, problems, sandbox,
                                                                expected, tmp_path):
    """--speculative ngram: one request at a time on LLM, or drafting inside the batch."""
    for concurrency in (1, 3):
        backend = local_backend(str(tiny_model), threads=1, max_model_len=CONTEXT,
                                concurrency=concurrency, speculative="ngram")
        kind = LocalBatchedBackend if concurrency > 1 else LocalBackend
        assert isinstance(backend, kind)
        assert score(backend, problems, sandbox, tmp_path / f"s{concurrency}.jsonl",
                     concurrency=concurrency) == expected


def test_server_backend_gives_up_on_a_url_where_nothing_listens():
    """It retries for listen_timeout_s, then reports the connection error in one line."""
    with pytest.raises(EvalBackendError, match=r"^http://127\.0\.0\.1:9/v1/models: "):
        ServerBackend("http://127.0.0.1:9", listen_timeout_s=1)


def test_server_backend_waits_through_503_while_the_model_loads():
    """/health answers 503 twice (loading), then 200: the backend is built, not failed."""
    import http.server
    import threading

    health_calls = []

    class Loading(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health":
                health_calls.append(1)
                status, body = (503, b"{}") if len(health_calls) <= 2 else (200, b"{}")
            else:
                status, body = 200, b'{"data": [{"id": "loaded"}]}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Loading)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        backend = ServerBackend(f"http://127.0.0.1:{httpd.server_address[1]}/v1",
                                ready_timeout_s=30)
        assert backend.name == "loaded" and len(health_calls) == 3
        backend.close()
    finally:
        httpd.shutdown()
