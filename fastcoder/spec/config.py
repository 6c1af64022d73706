"""SpeculativeConfig: which proposer drafts tokens, parsed from `ngram` or `draft:MODEL`."""
from __future__ import annotations

from dataclasses import dataclass

from fastcoder.errors import FastcoderError


class SpeculativeConfigError(FastcoderError):
    """A bad --speculative value, or a draft model that cannot draft for the target."""
    code = "invalid_speculative_config"


class IncompatibleDraftModelError(SpeculativeConfigError):
    code = "incompatible_draft_model"


METHODS = ("ngram", "draft")


@dataclass(frozen=True, slots=True)
class SpeculativeConfig:
    """method "ngram": prompt lookup over prompt + output; "draft": a small model of the same
    tokenizer (`draft_model`, a catalog name or .gguf path) drafts greedily.

    Draft length (tokens) adapts between min_k and max_k, starting at initial_k: it doubles after
    every fully accepted draft and shrinks after a rejection, so text that copies the prompt gets
    long drafts and free-form text costs little verification."""
    method: str
    draft_model: str | None = None
    min_n: int = 2                # shortest n-gram that may anchor a prompt-lookup draft
    max_n: int = 8                # longest n-gram tried first (longer = fewer false matches)
    min_k: int = 2
    initial_k: int = 8
    max_k: int = 32

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SpeculativeConfigError(f"unknown speculative method {self.method!r} "
                                         f"(use 'ngram' or 'draft:MODEL')", param="speculative")
        if (self.method == "draft") != bool(self.draft_model):
            raise SpeculativeConfigError("a draft model is given exactly with 'draft:MODEL'",
                                         param="speculative")
        if not 1 <= self.min_n <= self.max_n:
            raise SpeculativeConfigError(f"need 1 <= min_n <= max_n, got {self.min_n}, "
                                         f"{self.max_n}", param="speculative")
        if not 1 <= self.min_k <= self.initial_k <= self.max_k:
            raise SpeculativeConfigError(f"need 1 <= min_k <= initial_k <= max_k, got "
                                         f"{self.min_k}, {self.initial_k}, {self.max_k}",
                                         param="speculative")

    @classmethod
    def parse(cls, spec: str | None) -> "SpeculativeConfig | None":
        """'ngram' | 'draft:MODEL' | None/'' (no speculation) -> config."""
        if spec is None or not spec.strip():
            return None
        spec = spec.strip()
        if spec == "ngram":
            return cls("ngram")
        method, sep, model = spec.partition(":")
        if method == "draft" and sep:
            if not model.strip():
                raise SpeculativeConfigError("'draft:' needs a model name or .gguf path, e.g. "
                                             "draft:qwen2.5-coder-0.5b-instruct",
                                             param="speculative")
            return cls("draft", draft_model=model.strip())
        raise SpeculativeConfigError(f"unknown --speculative value {spec!r} (use 'ngram' or "
                                     f"'draft:MODEL')", param="speculative")
