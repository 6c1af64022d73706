"""The tokenizer part of GGUF metadata (llama.cpp's `tokenizer.ggml.*` keys) as one frozen value."""
from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

from fastcoder.errors import ModelFileError

KEY_PREFIX = "tokenizer.ggml."


class TokenType(enum.IntEnum):
    """`tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`)."""
    UNDEFINED = 0
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


@dataclass(frozen=True, slots=True)
class GgufVocab:
    model: str                         # tokenizer.ggml.model: "gpt2" (byte-level BPE), "llama" (SPM), ...
    pre: str | None                    # tokenizer.ggml.pre: names the pre-tokenizer regex
    tokens: tuple[str, ...]            # index = token id
    token_types: tuple[int, ...]       # TokenType per id; NORMAL when the file has none
    merges: tuple[str, ...]            # "left right", best first (BPE only)
    scores: tuple[float, ...]          # SPM piece scores; empty when absent
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool
    chat_template: str | None
    # Ids stated by the file; None when absent. Keys are the suffix of "tokenizer.ggml.<name>_token_id".
    special_ids: Mapping[str, int]

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    @property
    def fingerprint(self) -> str:
        """sha256 over token texts and merges: identifies a vocabulary (golden fixtures record it)."""
        digest = hashlib.sha256()
        for part in (self.tokens, self.merges):
            digest.update("\n".join(part).encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()

    def special_id(self, name: str) -> int | None:
        return self.special_ids.get(name)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> "GgufVocab":
        tokens = metadata.get(KEY_PREFIX + "tokens")
        model = metadata.get(KEY_PREFIX + "model")
        if not tokens or not model:
            raise ModelFileError("GGUF metadata has no tokenizer (tokenizer.ggml.model / tokenizer.ggml.tokens)")
        num_tokens = len(tokens)
        token_types = metadata.get(KEY_PREFIX + "token_type") or [TokenType.NORMAL] * num_tokens
        if len(token_types) != num_tokens:
            raise ModelFileError(f"tokenizer.ggml.token_type has {len(token_types)} entries for {num_tokens} tokens")
        special_ids = {}
        for key, value in metadata.items():
            if key.startswith(KEY_PREFIX) and key.endswith("_token_id") and isinstance(value, int):
                # llama.cpp ignores out-of-range ids ("bad special token"), so do we.
                if 0 <= value < num_tokens:
                    special_ids[key[len(KEY_PREFIX):-len("_token_id")]] = value
        # llama.cpp and transformers both default BOS on for sentencepiece vocabularies only.
        add_bos = metadata.get(KEY_PREFIX + "add_bos_token", model == "llama")
        return cls(
            model=str(model),
            pre=metadata.get(KEY_PREFIX + "pre"),
            tokens=tuple(tokens),
            token_types=tuple(int(t) for t in token_types),
            merges=tuple(metadata.get(KEY_PREFIX + "merges") or ()),
            scores=tuple(metadata.get(KEY_PREFIX + "scores") or ()),
            add_bos=bool(add_bos),
            add_eos=bool(metadata.get(KEY_PREFIX + "add_eos_token", False)),
            add_space_prefix=bool(metadata.get(KEY_PREFIX + "add_space_prefix", model == "llama")),
            chat_template=metadata.get("tokenizer.chat_template"),
            special_ids=special_ids,
        )
