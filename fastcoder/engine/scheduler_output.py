"""What the scheduler hands the model runner each step (frozen; the runner never mutates it)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScheduledRequest:
    """Compute `token_ids_to_compute` at positions start_position, start_position + 1, ...;
    their KV goes to the slots `block_table` maps those positions to (position p lives in block
    block_table[p // block_size], slot p % block_size). Null-block entries (id 0) are pages a
    sliding-window request released; attention never reads them."""
    request_id: str
    token_ids_to_compute: tuple[int, ...]
    start_position: int
    block_table: tuple[int, ...]
    is_last_chunk: bool               # the chunk reaches num_tokens: sample a token after it
    # Tables of further KV groups (gemma3: the sliding-window layers, whose released pages are
    # the null block), indexed like the runner's KV groups 1, 2, ...; () for one-group models.
    group_block_tables: tuple[tuple[int, ...], ...] = ()
    # The last num_draft_tokens of token_ids_to_compute are a speculative draft (their logits
    # verify it); they are not part of the request yet.
    num_draft_tokens: int = 0

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids_to_compute)


@dataclass(frozen=True, slots=True)
class SchedulerOutput:
    scheduled: tuple[ScheduledRequest, ...]   # running requests first, then new admissions
    num_scheduled_tokens: int                 # sum of the chunk lengths (<= the token budget)
    preempted_ids: tuple[str, ...] = ()       # lost their KV this step; recomputed later
    finished_ids: tuple[str, ...] = ()        # finished/aborted since the previous step

    @property
    def is_empty(self) -> bool:
        return not self.scheduled
