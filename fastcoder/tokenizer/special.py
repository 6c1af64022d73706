"""Special tokens llama.cpp finds by their text when the GGUF does not state their ids: end of
turn, FIM markers, and the end-of-generation (stop) set. The candidate tables follow llama.cpp's
`llama_vocab::impl::load` (src/llama-vocab.cpp); a candidate listed earlier wins."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

from fastcoder.tokenizer.vocab import GgufVocab

# Role name -> (metadata names, in priority order; candidate texts, in priority order).
# Metadata names are the "<name>" of "tokenizer.ggml.<name>_token_id".
DETECTED_ROLES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = MappingProxyType({
    "eot": (("eot",), ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                       "<|end_of_text|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>")),
    "eom": (("eom",), ("<|eom_id|>",)),
    "fim_pre": (("fim_pre", "prefix"), ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>",
                                        "<PRE>", "▁<PRE>", "<|code_prefix|>")),
    "fim_suf": (("fim_suf", "suffix"), ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>",
                                        "<SUF>", "▁<SUF>", "<|code_suffix|>")),
    "fim_mid": (("fim_mid", "middle"), ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>",
                                        "<MID>", "▁<MID>", "<|code_middle|>")),
    "fim_pad": (("fim_pad",), ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>")),
    "fim_rep": (("fim_rep",), ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>")),
    "fim_sep": (("fim_sep",), ("<|file_sep|>",)),
})

# Texts that end generation wherever they appear in the vocabulary (llama.cpp's EOG list).
EOG_TEXTS: tuple[str, ...] = (
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
)


@dataclass(frozen=True, slots=True)
class SpecialTokens:
    """Resolved ids; None where the vocabulary has no such token."""
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    unk_id: int | None
    role_to_id: Mapping[str, int]       # keys of DETECTED_ROLES that were found
    stop_ids: frozenset[int]            # end-of-generation set


def _find(vocab: GgufVocab, token_to_id: Callable[[str], int | None], role: str) -> int | None:
    names, texts = DETECTED_ROLES[role]
    for name in names:
        if (token_id := vocab.special_id(name)) is not None:
            return token_id
    for text in texts:
        if (token_id := token_to_id(text)) is not None:
            return token_id
    return None


def resolve_special_tokens(vocab: GgufVocab, token_to_id: Callable[[str], int | None]) -> SpecialTokens:
    """`token_to_id` looks up a token text (None when absent)."""
    role_to_id = {}
    for role in DETECTED_ROLES:
        if (token_id := _find(vocab, token_to_id, role)) is not None:
            role_to_id[role] = token_id
    eos_id = vocab.special_id("eos")
    stop_ids = {role_to_id[r] for r in ("fim_pad", "fim_rep", "fim_sep", "eot", "eom") if r in role_to_id}
    text_to_eog = {text: token_to_id(text) for text in EOG_TEXTS}
    stop_ids.update(i for i in text_to_eog.values() if i is not None)
    if eos_id is not None:
        stop_ids.add(eos_id)
    if None not in (text_to_eog["<|return|>"], text_to_eog["<|call|>"], text_to_eog["<|end|>"]):
        # gpt-oss (harmony): "<|end|>" closes a message, not the generation (llama.cpp does the same).
        stop_ids.discard(text_to_eog["<|end|>"])
    return SpecialTokens(
        bos_id=vocab.special_id("bos"), eos_id=eos_id, pad_id=vocab.special_id("padding"),
        unk_id=vocab.special_id("unknown"), role_to_id=MappingProxyType(role_to_id),
        stop_ids=frozenset(stop_ids))
