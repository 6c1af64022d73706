"""Scheduler: continuous batching over a paged KV cache (vLLM v1 `sched/scheduler.py`, FCFS).

There is no prefill or decode phase. Each step every request is given
`min(num_tokens - num_computed_tokens, remaining token budget)` tokens: running requests first
(in arrival order, so a decode costs 1 token and a long prompt is chunked instead of stalling
them), then waiting requests in FIFO order, looked up in the prefix cache when admitted. When a
running request cannot get KV blocks, the most recently arrived running request is preempted:
its blocks are freed and it goes back to the front of the queue to be recomputed.

Protocol per step: `schedule()` -> runner -> `update_from_output(sampled)`; then the engine
checks stop conditions (EOS, stop strings, max_tokens, `num_tokens >= max_model_len`) and calls
`finish_request`. The scheduler knows nothing about tokenizers or sampling."""
from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence

from fastcoder.engine.request import Request, RequestStatus
from fastcoder.engine.scheduler_output import ScheduledRequest, SchedulerOutput
from fastcoder.errors import ContextLengthError, InvalidParameterError
from fastcoder.kv.kv_cache_manager import KVCacheManager
from fastcoder.sampling_params import SamplingParams


class Scheduler:
    def __init__(self, kv_manager: KVCacheManager, max_num_seqs: int = 64,
                 max_num_batched_tokens: int = 512, max_model_len: int = 2048):
        if max_num_seqs < 1 or max_num_batched_tokens < 1 or max_model_len < 2:
            raise ValueError("max_num_seqs and max_num_batched_tokens must be >= 1, "
                             "max_model_len >= 2")
        if max_num_batched_tokens < max_num_seqs:
            # Otherwise the running requests at the back would never get their decode token.
            raise ValueError(f"max_num_batched_tokens ({max_num_batched_tokens}) must be >= "
                             f"max_num_seqs ({max_num_seqs})")
        capacity = kv_manager.token_capacity
        if capacity < max_model_len:
            # Otherwise one request alone could outgrow the pool and preempt itself forever.
            raise ValueError(f"KV cache holds {capacity} tokens, fewer than max_model_len "
                             f"{max_model_len}")
        self.kv = kv_manager
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.max_model_len = max_model_len
        self.requests: dict[str, Request] = {}        # every unfinished request
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []              # sorted by arrival_index
        self._next_arrival = 0
        self._finished_ids: list[str] = []            # reported in the next SchedulerOutput
        self._in_flight: tuple[ScheduledRequest, ...] = ()

    # -- queries --------------------------------------------------------------------------
    @property
    def num_running(self) -> int:
        return len(self.running)

    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    def has_unfinished(self) -> bool:
        return bool(self.requests)

    def get_request(self, request_id: str) -> Request | None:
        return self.requests.get(request_id)

    # -- request lifecycle ----------------------------------------------------------------
    def add_request(self, request_id: str, prompt_ids: list[int],
                    params: SamplingParams) -> Request:
        """Queues a request. The prompt must leave room for at least one generated token."""
        if request_id in self.requests:
            raise InvalidParameterError(f"request id {request_id!r} is already in use",
                                        param="request_id")
        if not prompt_ids:
            raise InvalidParameterError("prompt must contain at least one token", param="prompt")
        if len(prompt_ids) >= self.max_model_len:
            raise ContextLengthError(
                f"prompt has {len(prompt_ids)} tokens; this model's context is "
                f"{self.max_model_len} tokens, including at least one generated token",
                param="prompt")
        request = Request(request_id, prompt_ids, params, arrival_index=self._next_arrival)
        self._next_arrival += 1
        self.requests[request_id] = request
        self.waiting.append(request)
        return request

    def finish_request(self, request_id: str, status: RequestStatus) -> Request | None:
        """Marks a request finished and frees its KV blocks now. Unknown or already finished
        ids are ignored (returns None)."""
        if not status.is_finished:
            raise ValueError(f"{status} is not a finished status")
        request = self.requests.pop(request_id, None)
        if request is None:
            return None
        if request.status is RequestStatus.RUNNING:
            self.running.remove(request)
        else:
            self.waiting.remove(request)
        self.kv.free(request)
        request.status = status
        self._finished_ids.append(request_id)
        return request

    def abort_request(self, request_id: str) -> Request | None:
        return self.finish_request(request_id, RequestStatus.FINISHED_ABORTED)

    # -- one step -------------------------------------------------------------------------
    def schedule(self) -> SchedulerOutput:
        if self._in_flight:
            raise RuntimeError("schedule() called before update_from_output() of the last step")
        budget = self.max_num_batched_tokens
        scheduled: list[ScheduledRequest] = []
        preempted_ids: list[str] = []

        index = 0
        while index < len(self.running) and budget > 0:
            request = self.running[index]
            num_new = self._num_new_tokens(request, request.num_computed_tokens, budget)
            if num_new <= 0:
                index += 1
                continue
            # Drafts that do not fit the budget or the context are dropped, never split off.
            num_spec = request.num_computed_tokens + num_new - request.num_tokens
            del request.spec_token_ids[max(0, num_spec):]
            while self.kv.allocate_slots(request, num_new) is None:
                victim = self.running[-1]   # latest arrival; never one already scheduled
                self._preempt(victim)
                preempted_ids.append(victim.request_id)
                if victim is request:
                    break
            else:
                scheduled.append(self._scheduled(request, num_new))
                budget -= num_new
                index += 1
                continue
            break                           # the request preempted itself: pool exhausted

        # Admitting new work right after a preemption would only thrash.
        while (not preempted_ids and self.waiting and budget > 0
               and len(self.running) < self.max_num_seqs):
            request = self.waiting[0]
            computed_blocks, num_hit = self.kv.get_computed_blocks(request)
            num_new = self._num_new_tokens(request, num_hit, budget)
            if num_new <= 0:
                break   # num_tokens >= max_model_len: the engine must finish it (see module doc)
            if self.kv.allocate_slots(request, num_new, computed_blocks) is None:
                break   # FIFO: nobody overtakes the head of the queue
            self.waiting.popleft()
            if request.status is RequestStatus.WAITING:
                request.num_cached_tokens = num_hit
            request.num_computed_tokens = num_hit
            request.status = RequestStatus.RUNNING
            bisect.insort(self.running, request, key=_arrival)
            scheduled.append(self._scheduled(request, num_new))
            budget -= num_new

        output = SchedulerOutput(
            scheduled=tuple(scheduled),
            num_scheduled_tokens=self.max_num_batched_tokens - budget,
            preempted_ids=tuple(preempted_ids),
            finished_ids=tuple(self._finished_ids))
        self._finished_ids.clear()
        self._in_flight = output.scheduled
        return output

    def update_from_output(self, sampled: dict[str, int | Sequence[int]]) -> None:
        """Advances every request scheduled in the last step by its chunk and appends the
        tokens emitted after a last chunk: one sampled token, or with a draft the accepted draft
        tokens plus the target's own next token. The KV of rejected draft positions rolls back:
        num_computed_tokens ends before them and their blocks go back to the pool. Requests
        finished meanwhile are skipped."""
        in_flight, self._in_flight = self._in_flight, ()
        for item in in_flight:
            request = self.requests.get(item.request_id)
            if request is None or request.status is not RequestStatus.RUNNING:
                continue
            request.spec_token_ids.clear()
            if not item.is_last_chunk:
                request.num_computed_tokens += item.num_tokens
                self.kv.cache_blocks(request, request.num_computed_tokens)
                continue
            if item.request_id not in sampled:
                raise ValueError(f"no sampled token for {item.request_id!r}, whose last "
                                 "chunk ran")
            token_ids = sampled[item.request_id]
            token_ids = [token_ids] if isinstance(token_ids, int) else list(token_ids)
            num_accepted = len(token_ids) - 1
            if not 0 <= num_accepted <= item.num_draft_tokens:
                raise ValueError(f"{len(token_ids)} tokens for {item.request_id!r}, which had "
                                 f"{item.num_draft_tokens} draft tokens")
            num_rejected = item.num_draft_tokens - num_accepted
            request.num_computed_tokens += item.num_tokens - num_rejected
            if num_rejected:
                self.kv.trim(request, request.num_computed_tokens)
            self.kv.cache_blocks(request, request.num_computed_tokens)
            for token_id in token_ids:
                request.append_output_token(token_id)

    # -- internals ------------------------------------------------------------------------
    def _num_new_tokens(self, request: Request, num_computed: int, budget: int) -> int:
        # Position max_model_len - 1 is never computed: its logits would pick a token past
        # the context.
        return min(request.num_tokens_with_spec - num_computed, budget,
                   self.max_model_len - 1 - num_computed)

    def _scheduled(self, request: Request, num_new: int) -> ScheduledRequest:
        start = request.num_computed_tokens
        token_ids = request.all_token_ids[start:start + num_new]
        num_draft = max(0, start + num_new - request.num_tokens)
        if num_draft:
            token_ids = token_ids + request.spec_token_ids[:num_draft]
        return ScheduledRequest(
            request_id=request.request_id,
            token_ids_to_compute=tuple(token_ids),
            start_position=start,
            block_table=tuple(self.kv.block_table(request.request_id)),
            group_block_tables=self.kv.group_block_tables(request.request_id),
            is_last_chunk=start + num_new >= request.num_tokens,
            num_draft_tokens=num_draft)

    def _preempt(self, request: Request) -> None:
        self.running.remove(request)
        self.kv.free(request)
        request.num_computed_tokens = 0
        request.spec_token_ids.clear()
        request.num_preemptions += 1
        request.status = RequestStatus.PREEMPTED
        self.waiting.appendleft(request)


def _arrival(request: Request) -> int:
    return request.arrival_index
