"""fastcoder.tokenizer on the real Qwen2.5-Coder GGUF vocabulary, against transformers' ids and
chat renderings recorded in tests/fixtures/tokenizer_qwen2.json (made by
scripts/make_tokenizer_golden.py; this test does not need transformers)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from fastcoder.loader.metadata import read_metadata
from fastcoder.tokenizer import Tokenizer

MODEL = "qwen2.5-coder-0.5b-instruct"
ENV_PATH = "FASTCODER_TEST_GGUF"
FIXTURE = Path(__file__).parent.parent / "fixtures" / "tokenizer_qwen2.json"


def _model_path() -> Path:
    """The pulled catalog model, else $FASTCODER_TEST_GGUF; fails (never skips) without one."""
    reasons = []
    try:
        from fastcoder.store.cache import resolve_model_path
        return Path(resolve_model_path(MODEL))
    except Exception as exc:  # ImportError while store is written, ModelNotPulledError, ...
        reasons.append(f"resolve_model_path({MODEL!r}): {exc}")
    env = os.environ.get(ENV_PATH)
    if env and Path(env).is_file():
        return Path(env)
    reasons.append(f"${ENV_PATH}={env!r} is not a file")
    pytest.fail(f"no GGUF for {MODEL}: run `fastcoder pull {MODEL}` or set {ENV_PATH} to the file "
                f"({'; '.join(reasons)})")


def _vocab_fingerprint(tokens: list[str], merges: list[str]) -> str:
    # Same as scripts/make_tokenizer_golden.py::vocab_fingerprint.
    digest = hashlib.sha256()
    for part in (tokens, merges):
        digest.update("\n".join(part).encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


@pytest.fixture(scope="module")
def metadata() -> dict:
    return read_metadata(_model_path())


@pytest.fixture(scope="module")
def tok(metadata) -> Tokenizer:
    return Tokenizer.from_metadata(metadata)


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def _first_diff(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def test_fixture_is_for_this_vocabulary(metadata, golden):
    assert len(golden["entries"]) >= 300
    fingerprint = _vocab_fingerprint(metadata["tokenizer.ggml.tokens"], metadata["tokenizer.ggml.merges"])
    assert fingerprint == golden["vocab_fingerprint"], (
        f"{FIXTURE.name} was made from another vocabulary ({golden['gguf_file']}); "
        f"regenerate it: {golden['command']}")


def test_ids_match_transformers(tok, golden):
    failures = []
    for n, entry in enumerate(golden["entries"]):
        got = tok.encode(entry["text"])
        if got != entry["ids"]:
            i = _first_diff(got, entry["ids"])
            failures.append(f"entry {n} ({entry['category']}) {entry['text'][:60]!r}: first diff at token {i}: "
                            f"got {got[i:i + 5]} expected {entry['ids'][i:i + 5]}")
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:10])


def test_encode_batch_matches_encode(tok, golden):
    texts = [e["text"] for e in golden["entries"]]
    assert tok.encode_batch(texts) == [e["ids"] for e in golden["entries"]]


def test_decode_round_trips(tok, golden):
    bad = [e["text"][:60] for e in golden["entries"] if tok.decode(tok.encode(e["text"])) != e["text"]]
    assert not bad, f"{len(bad)} texts do not round-trip, e.g. {bad[:3]!r}"


def test_decode_skip_special_matches_transformers(tok, golden):
    entries = [e for e in golden["entries"] if "decode_skip_special" in e]
    assert entries
    for entry in entries:
        assert tok.decode(entry["ids"], skip_special_tokens=True) == entry["decode_skip_special"], entry["text"]


def test_special_tokens_are_single_ids(tok):
    assert tok.encode("<|im_start|>user\nhi<|im_end|>") == [151644, 872, 198, 6023, 151645]
    assert tok.encode("<tool_call>") == [tok.token_to_id("<tool_call>")]   # user-defined: whole too
    assert tok.decode([151644, 872], skip_special_tokens=True) == "user"
    assert tok.decode([tok.token_to_id("<tool_call>")], skip_special_tokens=True) == "<tool_call>"


def test_incremental_decoder_equals_decode(tok, golden):
    for entry in golden["entries"]:
        decoder = tok.incremental_decoder()
        deltas = [decoder.push(i) for i in entry["ids"]]
        assert "".join(deltas) + decoder.finish() == tok.decode(entry["ids"]), entry["text"][:60]
        assert not any("\ufffd" in d for d in deltas) or "\ufffd" in entry["text"]


def test_incremental_decoder_holds_back_split_emoji(tok):
    for text in ("🫠", "𠀀"):                       # each spans several byte-level tokens
        ids = tok.encode(text)
        assert len(ids) > 1
        decoder = tok.incremental_decoder()
        deltas = [decoder.push(i) for i in ids]
        assert deltas == [""] * (len(ids) - 1) + [text]
    ids = tok.encode("ok 🫠")
    decoder = tok.incremental_decoder()
    deltas = [decoder.push(i) for i in ids[:-1]]
    assert "".join(deltas) == "ok " and decoder.has_pending
    assert decoder.finish() == "\ufffd"                # stream ended mid-character, like decode()
    assert tok.decode(ids[:-1]) == "ok \ufffd"


def test_chat_template_matches_transformers(tok, golden):
    assert golden["chats"]
    for chat in golden["chats"]:
        kwargs = {"tools": chat["tools"]} if "tools" in chat else {}
        rendered = tok.apply_chat_template(chat["messages"], add_generation_prompt=chat["add_generation_prompt"],
                                           **kwargs)
        assert rendered == chat["rendered"]
        assert tok.encode(rendered, add_special_tokens=False) == chat["ids"]


def test_fim_prompt(tok, golden):
    assert tok.fim is not None
    assert (tok.fim.prefix_id, tok.fim.suffix_id, tok.fim.middle_id) == tuple(
        tok.token_to_id(t) for t in ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"))
    for case in golden["fim"]:
        assert tok.build_fim_prompt(case["prefix"], case["suffix"]) == case["ids"]


def test_stop_ids_follow_llama_cpp(tok):
    # llama.cpp's end-of-generation set for this vocabulary: eos, the EOT-looking texts, and the
    # FIM pad / repo / file-separator tokens.
    expected = {tok.token_to_id(t) for t in ("<|im_end|>", "<|endoftext|>", "<|fim_pad|>", "<|repo_name|>",
                                             "<|file_sep|>")}
    assert tok.stop_token_ids == frozenset(expected)
    assert tok.eos_token_id == 151645 and tok.eos_token_id in tok.stop_token_ids
    assert tok.bos_token_id == 151643 and not tok.add_bos_token
    assert tok.vocab_size == 151936

