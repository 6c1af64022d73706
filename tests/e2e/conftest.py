from __future__ import annotations

import pytest

from fastcoder.engine.llm import LLM
from tests.e2e.server_process import ServerProcess
from tests.helpers.tiny_gguf import write_tiny_qwen2

ENGINES = ["batched", "serial"]


@pytest.fixture(scope="session")
def server_model(tmp_path_factory):
    """A tiny random qwen2 model with a 1024-token context, so streams can run long."""
    return write_tiny_qwen2(tmp_path_factory.mktemp("serve") / "tiny-serve.gguf",
                            context_length=1024)


@pytest.fixture(scope="session")
def reference(server_model):
    """The same model in-process on the single-sequence loop: the expected greedy outputs."""
    return LLM(str(server_model), max_model_len=1024, threads=1)


@pytest.fixture(scope="session", params=ENGINES)
def server(request, server_model):
    process = ServerProcess(server_model, engine=request.param).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def guarded_server(server_model):
    """API key required; one running request and one waiting at most."""
    process = ServerProcess(server_model, "--api-key", "s3cret", "--max-num-seqs", "1",
                            "--max-queue", "1").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture()
def client(server):
    import openai
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)
