"""`fastcoder bench serve`: concurrent streaming clients against a live OpenAI-compatible server
(fastcoder's own, and with --compare llama.cpp's llama-server on the same GGUF, context and
threads, 16 parallel slots), fixed prompts and lengths, measured in one run."""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fastcoder.bench.llama_cpp_bench import PeerUnavailableError

LLAMA_SERVER = Path("build/llama.cpp/bin/llama-server")
PROMPTS = [f"# Task {i}: write a Python function that parses a CSV line with quoted fields "
           f"and returns a list of strings.\n" for i in range(64)]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_stream(client: httpx.AsyncClient, url: str, prompt: str, max_tokens: int
                     ) -> tuple[float, list[float], int]:
    """(ttft seconds, inter-token gaps, tokens) of one streamed completion."""
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "ignore_eos": True}
    started = time.perf_counter()
    stamps = []
    async with client.stream("POST", f"{url}/v1/completions", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                choice = json.loads(line[6:]).get("choices") or [{}]
                if choice[0].get("text"):
                    stamps.append(time.perf_counter())
    if not stamps:
        return float("nan"), [], 0
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return stamps[0] - started, gaps, len(stamps)


async def drive(url: str, concurrency: int, max_tokens: int) -> dict:
    async with httpx.AsyncClient(timeout=600) as client:
        started = time.perf_counter()
        results = await asyncio.gather(*[one_stream(client, url, PROMPTS[i % len(PROMPTS)],
                                                    max_tokens) for i in range(concurrency)])
        elapsed = time.perf_counter() - started
    ttfts = [r[0] for r in results]
    gaps = [g for r in results for g in r[1]]
    tokens = sum(r[2] for r in results)
    return {"concurrency": concurrency, "output_tok_s": round(tokens / elapsed, 2),
            "ttft_p50_s": round(statistics.median(ttfts), 3),
            "ttft_p99_s": round(percentile(ttfts, 0.99), 3),
            "itl_p50_ms": round(1000 * percentile(gaps, 0.5), 1),
            "itl_p99_ms": round(1000 * percentile(gaps, 0.99), 1)}


def wait_healthy(proc: subprocess.Popen, url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerUnavailableError(f"server exited during start-up: {proc.args[0]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise PeerUnavailableError("server did not become healthy in time")


async def cached_prefix_ttft(url: str, prefix_tokens: int) -> dict:
    """TTFT of a request whose first `prefix_tokens` tokens (roughly: repeated code lines) were
    sent just before, as an agent resending its conversation does; and of the cold first one."""
    line = "    result = compute_value(index, items[index]) + offset\n"
    prefix = "def process(items, offset):\n" + line * (prefix_tokens // 14)
    async with httpx.AsyncClient(timeout=600) as client:
        cold, _, _ = await one_stream(client, url, prefix + "# first question\n", 4)
        warm, _, _ = await one_stream(client, url, prefix + "# second question\n", 4)
    return {"prefix_tokens": prefix_tokens, "ttft_cold_s": round(cold, 3),
            "ttft_cached_s": round(warm, 3)}


def run_server_bench(command: list[str], port: int, levels: list[int], max_tokens: int,
                     prefix_tokens: int = 0) -> list[dict]:
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(proc, url)
        asyncio.run(drive(url, 1, 8))                       # warm-up
        rows = [asyncio.run(drive(url, level, max_tokens)) for level in levels]
        if prefix_tokens:
            rows.append(asyncio.run(cached_prefix_ttft(url, prefix_tokens)))
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def fastcoder_command(model_path: Path, port: int, threads: int, ctx: int) -> list[str]:
    return [sys.executable, "-m", "fastcoder.cli.main", "serve", "-m", str(model_path),
            "--port", str(port), "--threads", str(threads), "--max-model-len", str(ctx),
            "--max-num-seqs", "16"]


def llama_server_command(model_path: Path, port: int, threads: int, ctx: int) -> list[str]:
    if not LLAMA_SERVER.exists():
        raise PeerUnavailableError(f"{LLAMA_SERVER} not built: run `make llama-cpp`")
    return [str(LLAMA_SERVER), "-m", str(model_path), "--port", str(port), "-t", str(threads),
            "-tb", str(threads), "-np", "16", "-c", str(ctx * 16), "--no-webui"]
