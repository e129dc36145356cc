"""Helpers shared by the benchmark scripts: timing, peak memory, machine info."""

import gc
import os
import platform
import time
import tracemalloc
from datetime import date


def machine():
    """One line describing where the benchmark ran."""
    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import threadpoolctl

        blas = ", ".join(sorted({
            f"{info['internal_api']} {info.get('architecture') or ''}".strip()
            for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"
        }))
    except Exception:
        blas = "unknown BLAS"
    return (
        f"{date.today().isoformat()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Python {platform.python_version()}, numpy {np.__version__}, {blas}"
    )


def best_time(function, repeat=3):
    """Smallest wall time of ``repeat`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_bytes(function):
    """Peak bytes allocated through Python's allocators while ``function`` runs.

    numpy reports its array buffers to tracemalloc, so this counts the arrays
    a fit creates (not BLAS's internal scratch space, nor the input data
    allocated before the call).
    """
    gc.collect()
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def mib(n_bytes):
    return n_bytes / 2**20
