"""KV caches on CPU commit memory only for the positions a sequence reaches (calloc'd zero
pages), so `vibe serve` with 16 slots of 8,192 positions does not take gigabytes up front."""

from __future__ import annotations

import sys

import pytest
import torch

from engine.kv_cache import KVCache, KVPool


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_cpu_caches_are_zero_and_committed_as_they_fill() -> None:
    before = _rss_mb()
    # 8 caches of SmolLM2's shape at 8,192 positions: 3 GB if they were written up front.
    caches = [KVCache(30, 3, 8192, 64, torch.float32, torch.device("cpu")) for _ in range(8)]
    assert _rss_mb() - before < 200
    c = caches[0]
    assert c.k.shape == (30, 3, 8192, 64) and c.k.dtype == torch.float32 and c.k.is_contiguous()
    assert not c.k.any() and not c.v.any()
    # A sequence's first positions in every layer commit a few pages each, not whole planes
    # (huge pages would commit 2 MiB per layer and head: the whole 360 MB cache).
    filled = _rss_mb()
    for layer in range(30):
        c.write(layer, 0, torch.ones(5, 3, 64), torch.full((5, 3, 64), 2.0))
    assert _rss_mb() - filled < 20
    k, v = c.view(2, 0, 6)
    assert k[:, :5].eq(1).all() and v[:, :5].eq(2).all() and not k[:, 5].any()


def test_bf16_pool_slots_are_zero_views() -> None:
    pool = KVPool(2, 1, 2, 16, 8, torch.bfloat16, torch.device("cpu"))
    assert pool.k.dtype == torch.bfloat16 and pool.k.shape == (2, 1, 2, 16, 8)
    slot = pool.slot(1)
    slot.write(
        0, 3, torch.ones(1, 2, 8, dtype=torch.bfloat16), torch.ones(1, 2, 8, dtype=torch.bfloat16)
    )
    assert pool.k[1, 0, :, 3].eq(1).all() and not pool.k[0].any()
