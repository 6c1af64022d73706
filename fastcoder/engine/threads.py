"""Thread count: physical cores by default (hyper-threads only contend for the same FMA units)."""
from __future__ import annotations

import os

import torch


def physical_cores() -> int:
    cores: set[tuple[str, str]] = set()
    physical_id = core_id = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "physical id":
                    physical_id = value
                elif key == "core id":
                    core_id = value
                    cores.add((physical_id, core_id))
    except OSError:
        pass
    available = len(os.sched_getaffinity(0))
    return max(1, min(len(cores) or available, available))


def set_threads(num_threads: int | None) -> int:
    """Sets torch's (and numba's, once loaded) thread count; returns the count used."""
    num_threads = num_threads or physical_cores()
    torch.set_num_threads(num_threads)
    return num_threads
