"""`Tokenizer`: text <-> token ids for one GGUF model, plus its chat template, FIM layout and
stop tokens. Built from metadata alone (`fastcoder.loader.metadata.read_metadata`)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from fastcoder.tokenizer.chat_template import ChatTemplate
from fastcoder.tokenizer.errors import FimNotSupportedError, NoChatTemplateError
from fastcoder.tokenizer.families import build_backend
from fastcoder.tokenizer.fim import FimTokens
from fastcoder.tokenizer.incremental import IncrementalDecoder
from fastcoder.tokenizer.special import resolve_special_tokens
from fastcoder.tokenizer.vocab import GgufVocab, TokenType


class Tokenizer:
    def __init__(self, vocab: GgufVocab, *, chat_template: str | None = None):
        """`chat_template` overrides the file's `tokenizer.chat_template`."""
        built = build_backend(vocab)
        self._backend = built.backend
        self._piece_bytes = built.piece_bytes
        self._strip_leading_space = built.strip_leading_space
        self._id_to_bytes: dict[int, bytes] = {}
        self.vocab_size: int = vocab.num_tokens
        self.add_bos_token: bool = vocab.add_bos
        self.add_eos_token: bool = vocab.add_eos
        special = resolve_special_tokens(vocab, self._backend.token_to_id)
        self.bos_token_id: int | None = special.bos_id
        self.eos_token_id: int | None = special.eos_id
        self.pad_token_id: int | None = special.pad_id
        self.stop_token_ids: frozenset[int] = special.stop_ids
        self.fim: FimTokens | None = FimTokens.from_roles(special.role_to_id)
        # What `decode(skip_special_tokens=True)` drops: the control tokens.
        self.special_token_ids: frozenset[int] = frozenset(
            i for i, t in enumerate(vocab.token_types) if t == TokenType.CONTROL)
        template = chat_template if chat_template is not None else vocab.chat_template
        names = {"bos_token": special.bos_id, "eos_token": special.eos_id,
                 "pad_token": special.pad_id, "unk_token": special.unk_id}
        self._chat_template = None if not template else ChatTemplate(
            template, {name: vocab.tokens[i] for name, i in names.items() if i is not None})

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], *, chat_template: str | None = None) -> "Tokenizer":
        return cls(GgufVocab.from_metadata(metadata), chat_template=chat_template)

    # -- text <-> ids ---------------------------------------------------------------------------

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Special-token texts in `text` (e.g. "<|im_start|>") become their single ids.
        `add_special_tokens` adds BOS/EOS only where the GGUF asks for them."""
        ids = self._backend.encode(text, add_special_tokens=False).ids
        if add_special_tokens:
            ids = self._add_bos_eos(ids)
        return ids

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
        """Like `encode`, parallel across texts inside `tokenizers`."""
        encodings = self._backend.encode_batch(list(texts), add_special_tokens=False)
        return [self._add_bos_eos(e.ids) if add_special_tokens else e.ids for e in encodings]

    def _add_bos_eos(self, ids: list[int]) -> list[int]:
        if self.add_bos_token and self.bos_token_id is not None:
            ids = [self.bos_token_id, *ids]
        if self.add_eos_token and self.eos_token_id is not None:
            ids = [*ids, self.eos_token_id]
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Invalid UTF-8 (a sequence cut mid-character) becomes U+FFFD."""
        return self._backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        """Id of one token given as the vocabulary spells it ("<|im_end|>", "Ġthe")."""
        return self._backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._backend.id_to_token(token_id)

    def token_bytes(self, token_id: int) -> bytes:
        """The raw bytes one token stands for (b"" for an id outside the vocabulary)."""
        data = self._id_to_bytes.get(token_id)
        if data is None:
            piece = self._backend.id_to_token(token_id)
            data = b"" if piece is None else self._piece_bytes(piece)
            self._id_to_bytes[token_id] = data
        return data

    def incremental_decoder(self, skip_special_tokens: bool = False) -> IncrementalDecoder:
        """A fresh streaming decoder for one output sequence."""
        return IncrementalDecoder(self.token_bytes,
                                  skip_ids=self.special_token_ids if skip_special_tokens else frozenset(),
                                  strip_leading_space=self._strip_leading_space)

    # -- prompts --------------------------------------------------------------------------------

    def build_fim_prompt(self, prefix: str, suffix: str) -> list[int]:
        """Fill-in-the-middle prompt: <PRE> prefix <SUF> suffix <MID> (BOS first if the model
        wants one). The model's answer is the middle, ended by a stop token."""
        if self.fim is None:
            raise FimNotSupportedError("this model has no fill-in-the-middle tokens")
        ids = self.fim.layout(self.encode(prefix, add_special_tokens=False),
                              self.encode(suffix, add_special_tokens=False))
        if self.add_bos_token and self.bos_token_id is not None:
            ids.insert(0, self.bos_token_id)
        return ids

    @property
    def has_chat_template(self) -> bool:
        return self._chat_template is not None

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True,
                            **kwargs) -> str:
        """The prompt text for an OpenAI-style message list. Tokenize it with
        `encode(text, add_special_tokens=False)`: templates write their own BOS."""
        if self._chat_template is None:
            raise NoChatTemplateError(
                "this model has no chat template (tokenizer.chat_template); use plain completions "
                "or pass a template")
        return self._chat_template.render(messages, add_generation_prompt=add_generation_prompt, **kwargs)
