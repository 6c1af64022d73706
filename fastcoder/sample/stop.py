"""Stop strings that may span token boundaries: hold back text that could start a stop string."""
from __future__ import annotations


class StopStringMatcher:
    """Feed text deltas; get back the text safe to emit and whether a stop string was hit.
    Text is emitted only once no stop string can still begin inside it."""

    def __init__(self, stop: tuple[str, ...]):
        self.stop = stop
        self.max_len = max((len(s) for s in stop), default=0)
        self.pending = ""

    def feed(self, delta: str) -> tuple[str, bool]:
        """Returns (text to emit, stopped). On a stop, the text before the stop string is emitted
        and the stop string itself is dropped, as the OpenAI API does."""
        if not self.stop:
            return delta, False
        self.pending += delta
        first = min((i for i in (self.pending.find(s) for s in self.stop) if i >= 0), default=-1)
        if first >= 0:
            out, self.pending = self.pending[:first], ""
            return out, True
        keep = self._longest_stop_prefix_suffix()
        cut = len(self.pending) - keep
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out

    def _longest_stop_prefix_suffix(self) -> int:
        """Length of the longest suffix of pending text that is a proper prefix of a stop string."""
        for length in range(min(self.max_len - 1, len(self.pending)), 0, -1):
            tail = self.pending[-length:]
            if any(s.startswith(tail) for s in self.stop):
                return length
        return 0
