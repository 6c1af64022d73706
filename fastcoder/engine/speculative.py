"""Builds the proposer a SpeculativeConfig names, loading and checking a draft model."""
from __future__ import annotations

from fastcoder.engine.runner import ModelRunner
from fastcoder.layers.linear import LinearFactory
from fastcoder.loader.gguf_file import GGUFModelFile, open_gguf
from fastcoder.spec.config import SpeculativeConfig
from fastcoder.spec.draft_model import DraftModelProposer, check_draft_compatible
from fastcoder.spec.ngram import NgramProposer
from fastcoder.spec.proposer import Proposer
from fastcoder.store.cache import resolve_model_path


def as_config(speculative: str | SpeculativeConfig | None) -> SpeculativeConfig | None:
    if speculative is None or isinstance(speculative, SpeculativeConfig):
        return speculative
    return SpeculativeConfig.parse(speculative)


def load_draft_gguf(config: SpeculativeConfig, target: GGUFModelFile) -> GGUFModelFile:
    """Opens the draft model and refuses one whose tokenizer differs from the target's."""
    draft = open_gguf(resolve_model_path(config.draft_model))
    check_draft_compatible(target.path.name, target.config, target.metadata,
                           draft.path.name, draft.config, draft.metadata)
    return draft


def build_proposer(config: SpeculativeConfig | None, target: GGUFModelFile, max_model_len: int,
                   linear: LinearFactory) -> Proposer | None:
    """One proposer for one sequence at a time (the single-sequence engines)."""
    if config is None:
        return None
    if config.method == "ngram":
        return NgramProposer(config)
    draft = load_draft_gguf(config, target)
    return DraftModelProposer(ModelRunner(draft, max_model_len, linear), config)
