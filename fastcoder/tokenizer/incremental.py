"""Streaming detokenization: token ids in, text deltas out, never half a UTF-8 character."""
from __future__ import annotations

import codecs
from typing import Callable, Iterable


class IncrementalDecoder:
    """Decodes one request's output as it grows. An emoji spread over four byte tokens yields
    "" three times, then the whole character. The concatenated deltas plus `finish()` equal
    `Tokenizer.decode(all_ids)`: bytes that never complete become U+FFFD there as here.

    Token bytes come from a callable so the decoder holds no vocabulary of its own."""

    def __init__(self, token_bytes: Callable[[int], bytes], *, skip_ids: frozenset[int] = frozenset(),
                 strip_leading_space: bool = False):
        self._token_bytes = token_bytes
        self._skip_ids = skip_ids
        self._strip_leading_space = strip_leading_space
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False

    def push(self, token_id: int) -> str:
        """Text completed by this token ("" while a character is still partial)."""
        if token_id in self._skip_ids:
            return ""
        data = self._token_bytes(token_id)
        if not self._started and data:
            self._started = True
            if self._strip_leading_space and data[:1] == b" ":
                data = data[1:]
        return self._utf8.decode(data)

    def extend(self, token_ids: Iterable[int]) -> str:
        return "".join(self.push(t) for t in token_ids)

    def finish(self) -> str:
        """Flush at end of stream: an incomplete trailing character becomes U+FFFD."""
        return self._utf8.decode(b"", final=True)

    @property
    def has_pending(self) -> bool:
        """True while bytes of an incomplete character are held back."""
        return bool(self._utf8.getstate()[0])
