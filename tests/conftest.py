"""Shared fixtures. Real-model tests need the pulled default model: `make test` pulls it first;
if it is missing the tests fail with the reason (they never skip)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

DEFAULT_TEST_MODEL = "qwen2.5-coder-0.5b-instruct"
FIXTURES = Path(__file__).parent / "fixtures"


def model_path(name: str = DEFAULT_TEST_MODEL) -> Path:
    override = os.environ.get("FASTCODER_TEST_GGUF")
    if override and name == DEFAULT_TEST_MODEL:
        return Path(override)
    from fastcoder.errors import FastcoderError
    from fastcoder.store.cache import resolve_model_path
    try:
        return resolve_model_path(name)
    except FastcoderError as exc:
        pytest.fail(f"model {name} unavailable: {exc.message} (run `fastcoder pull {name}`)")


@pytest.fixture(scope="session")
def qwen_path() -> Path:
    return model_path()


@pytest.fixture(scope="session")
def qwen_llm(qwen_path):
    """The default (quantized-kernel) path."""
    from fastcoder.engine.llm import LLM
    return LLM(str(qwen_path), max_model_len=1024)


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> Path:
    """A 2-layer random qwen2 model with a byte-level vocabulary (context 64 tokens)."""
    from tests.helpers.tiny_gguf import write_tiny_qwen2
    return write_tiny_qwen2(tmp_path_factory.mktemp("tiny") / "tiny-qwen2.gguf")


@pytest.fixture(scope="session")
def tiny_llm(tiny_gguf):
    from fastcoder.engine.llm import LLM
    return LLM(str(tiny_gguf))
