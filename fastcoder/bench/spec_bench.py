"""`fastcoder bench spec`: the code-edit workload (spec_workload) decoded greedily without
speculation and with each speculative method, on one loaded target model, file by file in the
same process. Reports effective output tokens/s (tokens after the first / seconds after the first
token, so prompt prefill is not counted; the draft model's own prefill is), acceptance rate, mean
accepted length, and whether every speculative output equals the plain one token for token."""
from __future__ import annotations

import time
from dataclasses import dataclass

from fastcoder.bench.spec_workload import EditTask, edit_tasks
from fastcoder.engine.generation import stream_tokens
from fastcoder.engine.speculative import build_proposer
from fastcoder.sampling_params import SamplingParams
from fastcoder.spec.config import SpeculativeConfig
from fastcoder.spec.proposer import SpecCounters

MAX_TOKENS_SLACK = 64          # reply = the file plus a code fence and maybe a sentence


@dataclass(frozen=True, slots=True)
class RunResult:
    token_ids: tuple[int, ...]
    first_token_s: float       # prefill (+ first sample)
    decode_s: float            # from the first token to the last

    @property
    def decode_tok_s(self) -> float:
        return (len(self.token_ids) - 1) / self.decode_s if self.decode_s > 0 else 0.0


def run_one(llm, prompt_ids: list[int], params: SamplingParams, proposer,
            counters: SpecCounters | None) -> RunResult:
    llm.runner.cached_ids = []          # no prefix reuse between the runs being compared
    started = time.perf_counter()
    first = None
    token_ids = []
    for delta in stream_tokens(llm.runner, llm.tokenizer, prompt_ids, params, proposer,
                               counters):
        first = first or time.perf_counter()
        if delta.token_id is not None:
            token_ids.append(delta.token_id)
    ended = time.perf_counter()
    return RunResult(tuple(token_ids), first - started, ended - first)


def bench_spec(model: str, methods: list[str], num_files: int, max_lines: int,
               threads: int | None, progress=None) -> dict:
    from fastcoder.engine.llm import LLM
    tasks = edit_tasks(num_files, max_lines)
    llm = LLM(model, max_model_len=4096, threads=threads)
    configs = {m: SpeculativeConfig.parse(m) for m in methods}
    proposers = _proposers(llm, configs)
    counters = {m: SpecCounters() for m in methods}
    totals = {m: [0, 0.0] for m in ["plain", *methods]}      # tokens after the first, seconds
    rows = []
    for task in tasks:
        prompt_ids = llm.chat_prompt_ids([{"role": "user", "content": task.prompt}])
        max_tokens = len(llm.tokenizer.encode(task.code)) + MAX_TOKENS_SLACK
        params = SamplingParams(temperature=0, max_tokens=max_tokens)
        plain = run_one(llm, prompt_ids, params, None, None)
        row = _row(task, prompt_ids, plain)
        _add(totals["plain"], plain)
        for method in methods:
            before = counters[method].snapshot()
            spec = run_one(llm, prompt_ids, params, proposers[method], counters[method])
            after = counters[method].snapshot()
            _add(totals[method], spec)
            drafted = after.num_drafted - before.num_drafted
            row[method] = {
                "tok_s": round(spec.decode_tok_s, 2),
                "speedup": round(spec.decode_tok_s / plain.decode_tok_s, 3),
                "acceptance_rate": round((after.num_accepted - before.num_accepted) / drafted, 3)
                if drafted else 0.0,
                "matched": spec.token_ids == plain.token_ids}
        rows.append(row)
        if progress:
            progress(row)
    return _report(llm, tasks, methods, rows, totals, counters, max_lines)


def _proposers(llm, configs: dict) -> dict:
    from fastcoder.engine.linear_backends import linear_factory
    linear = linear_factory("quant", llm.load_stats.num_threads)
    return {m: build_proposer(c, llm.gguf, llm.runner.max_model_len, linear)
            for m, c in configs.items()}


def _row(task: EditTask, prompt_ids: list[int], plain: RunResult) -> dict:
    return {"file": task.name, "edit": task.kind, "prompt_tokens": len(prompt_ids),
            "output_tokens": len(plain.token_ids), "plain_tok_s": round(plain.decode_tok_s, 2)}


def _add(total: list, run: RunResult) -> None:
    total[0] += len(run.token_ids) - 1
    total[1] += run.decode_s


def _report(llm, tasks, methods, rows, totals, counters, max_lines) -> dict:
    plain_rate = totals["plain"][0] / totals["plain"][1]
    report = {"model": llm.model_path.name, "threads": llm.load_stats.num_threads,
              "files": len(tasks), "max_lines": max_lines,
              "output_tokens": sum(r["output_tokens"] for r in rows),
              "plain_tok_s": round(plain_rate, 2)}
    for method in methods:
        stats = counters[method].snapshot()
        rate = totals[method][0] / totals[method][1]
        report[method] = {
            "tok_s": round(rate, 2), "speedup": round(rate / plain_rate, 3),
            "acceptance_rate": round(stats.acceptance_rate, 3),
            "mean_accepted_length": round(stats.mean_accepted_length, 3),
            "all_matched": all(r[method]["matched"] for r in rows),
            "num_matched": sum(r[method]["matched"] for r in rows)}
    report["rows"] = rows
    return report


def format_row(row: dict) -> str:
    parts = [f"{row['file']:<16} {row['edit']:<12} {row['output_tokens']:>4} tok  "
             f"plain {row['plain_tok_s']:6.2f} tok/s"]
    for key, value in row.items():
        if isinstance(value, dict):
            parts.append(f"{key} {value['tok_s']:6.2f} tok/s x{value['speedup']:.2f} "
                         f"acc {value['acceptance_rate']:.2f} "
                         f"{'match' if value['matched'] else 'MISMATCH'}")
    return " | ".join(parts)
