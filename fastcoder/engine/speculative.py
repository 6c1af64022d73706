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


class RequestProposers:
    """One proposer per request of a batching engine, made on first use and dropped when the
    request ends. Prompt lookup keeps only a draft length per request; a draft model shares
    its weights and gives each request its own contiguous KV cache."""

    def __init__(self, config: SpeculativeConfig, target: GGUFModelFile, max_model_len: int,
                 linear: LinearFactory):
        self.config = config
        self._draft = None
        if config.method == "draft":
            self._draft = ModelRunner(load_draft_gguf(config, target), max_model_len, linear)
        self._by_id: dict[str, Proposer] = {}

    def get(self, request_id: str) -> Proposer:
        proposer = self._by_id.get(request_id)
        if proposer is None:
            if self._draft is None:
                proposer = NgramProposer(self.config)
            else:
                proposer = DraftModelProposer(self._draft.with_own_cache(), self.config)
            self._by_id[request_id] = proposer
        return proposer

    def drop(self, request_id: str) -> None:
        self._by_id.pop(request_id, None)
