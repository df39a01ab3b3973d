"""The OpenMP runtime torch and the C kernels share (libgomp): releasing a thread's workers.

libgomp gives every thread that starts a parallel region its own pool of worker threads, kept
until that thread exits. When more workers are alive than the machine has cores, it stops
spin-waiting at barriers and sleeps instead, and a decode step of many short parallel regions
or barriers gets ~1.7x slower (SmolLM2 on 2 cores: 8.6 against 5.1 ms a token). That happens
when one thread loads the model (torch ops start its pool) and another generates, as
`vibe serve` and the agent's local provider do. `release_workers()` frees the calling thread's
pool; the thread that computes next starts its own.
"""

from __future__ import annotations

import ctypes
import functools

_PAUSE_SOFT = 1  # omp_pause_soft (OpenMP 5.0)


@functools.cache
def _runtime() -> ctypes.CDLL | None:
    try:
        import torch  # noqa: F401  (loads torch's libgomp first: the same soname is reused)

        return ctypes.CDLL("libgomp.so.1")
    except OSError:
        return None


def release_workers() -> bool:
    """Free this thread's OpenMP worker threads (outside any parallel region). False where
    the runtime is not libgomp or cannot pause."""
    lib = _runtime()
    fn = getattr(lib, "omp_pause_resource_all", None) if lib is not None else None
    if fn is None:
        return False
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn(_PAUSE_SOFT) == 0
