"""Request: the engine's mutable, per-request scheduling state (vLLM v1 `Request`).

Scheduling state is only `num_computed_tokens` against `num_tokens` (prompt + output): prefill,
chunked prefill, prefix-cache hits and decode are all "compute the next k tokens"."""
from __future__ import annotations

import enum
from collections.abc import Sequence

from fastcoder.sampling_params import SamplingParams


class RequestStatus(enum.Enum):
    WAITING = enum.auto()             # never scheduled yet
    RUNNING = enum.auto()             # holds KV blocks
    PREEMPTED = enum.auto()           # blocks taken back; waits to recompute from token 0
    FINISHED_STOPPED = enum.auto()    # EOS, stop token or stop string
    FINISHED_LENGTH = enum.auto()     # max_tokens or context end
    FINISHED_ABORTED = enum.auto()

    @property
    def is_finished(self) -> bool:
        return self in _FINISHED

    @property
    def finish_reason(self) -> str | None:
        """OpenAI `finish_reason` for a finished status, else None."""
        return _FINISH_REASON.get(self)


_FINISHED = frozenset({RequestStatus.FINISHED_STOPPED, RequestStatus.FINISHED_LENGTH,
                       RequestStatus.FINISHED_ABORTED})
_FINISH_REASON = {RequestStatus.FINISHED_STOPPED: "stop",
                  RequestStatus.FINISHED_LENGTH: "length",
                  RequestStatus.FINISHED_ABORTED: "abort"}


class Request:
    __slots__ = ("request_id", "prompt_ids", "params", "output_ids", "num_computed_tokens",
                 "num_cached_tokens", "num_preemptions", "status", "arrival_index",
                 "spec_token_ids", "_all_token_ids")

    def __init__(self, request_id: str, prompt_ids: Sequence[int], params: SamplingParams,
                 arrival_index: int = 0):
        self.request_id = request_id
        self.prompt_ids: tuple[int, ...] = tuple(prompt_ids)
        self.params = params
        self.output_ids: list[int] = []
        self.num_computed_tokens = 0          # tokens whose KV is in the cache
        self.num_cached_tokens = 0            # prefix-cache hit (tokens) at first admission
        self.num_preemptions = 0
        self.status = RequestStatus.WAITING
        self.arrival_index = arrival_index    # set by the scheduler: FIFO order and preemption
        # Draft tokens to verify after the last token (speculative decoding); the engine sets
        # them between steps, the scheduler computes them with the last token and drops them.
        self.spec_token_ids: list[int] = []
        self._all_token_ids: list[int] = list(self.prompt_ids)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.output_ids)

    @property
    def num_tokens(self) -> int:
        """Prompt + output tokens: the target `num_computed_tokens` chases."""
        return len(self._all_token_ids)

    @property
    def num_tokens_with_spec(self) -> int:
        return len(self._all_token_ids) + len(self.spec_token_ids)

    @property
    def all_token_ids(self) -> list[int]:
        """Prompt then output ids; a live list, do not mutate (use `append_output_token`)."""
        return self._all_token_ids

    def append_output_token(self, token_id: int) -> None:
        self.output_ids.append(token_id)
        self._all_token_ids.append(token_id)

    @property
    def is_finished(self) -> bool:
        return self.status.is_finished

    def __repr__(self) -> str:
        return (f"Request({self.request_id!r}, {self.status.name}, "
                f"computed={self.num_computed_tokens}/{self.num_tokens})")
