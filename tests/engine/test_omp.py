"""Releasing a thread's OpenMP workers (engine.kernels.omp): the pool's threads exit."""

from __future__ import annotations

import os
import time

import pytest
import torch

from engine.kernels import omp


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
def test_release_workers_ends_this_threads_pool() -> None:
    torch.set_num_threads(2)
    torch.ones(4_000_000).mul_(2)  # a parallel region: this thread's pool starts
    with_pool = _threads()
    if not omp.release_workers():
        pytest.skip("the OpenMP runtime is not libgomp")
    deadline = time.monotonic() + 5
    while _threads() >= with_pool and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _threads() < with_pool
    assert float(torch.ones(4_000_000).mul_(2).sum()) == 8_000_000  # a new pool works
