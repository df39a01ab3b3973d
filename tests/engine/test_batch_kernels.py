"""Batched decode over a pool of KV-cache slots (continuous batching on GPU): the batched Triton
decode attention against the torch reference (under TRITON_INTERPRET=1 on CPU, natively on a
GPU), the pool's slots as independent caches, and `BatchDecoder.step` through the batched kernels
against each sequence decoded alone through SDPA."""

from __future__ import annotations

import pytest
import torch

from engine import fast_path, kernels
from engine.batch import BatchDecoder
from engine.checkpoint import resolve
from engine.decoder import Decoder
from engine.engine import load_model
from engine.errors import EngineOutOfMemory
from engine.kernels import reference as ref
from engine.kv_cache import KVPool
from tests.engine.test_kernels import DEVICE, DTYPES, ON_GPU, _tol, gpu, use_triton

__all__ = ["use_triton"]  # the fixture: Triton kernels, interpreted on CPU

MAX_LEN = 150
# B, Hq, Hkv, D, slots, lengths, window, splits
CASES = [
    (1, 4, 4, 16, [2], [1], None, 1),  # one sequence, one cached token
    (3, 8, 2, 16, [4, 0, 2], [150, 7, 64], None, 3),  # GQA, ragged lengths, a full slot
    (4, 8, 2, 24, [1, 3, 0, 2], [97, 5, 130, 40], 40, 4),  # window; D not a power of two
    (2, 6, 2, 16, [3, 1], [9, 120], 5, 1),  # window narrower than a block; group of 3
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_batched_decode_attention_matches_the_reference(
    use_triton: None, dtype: torch.dtype, case: tuple
) -> None:
    from engine.kernels import triton_attention

    batch, n_heads, n_kv, dim, slots, lengths, window, splits = case
    torch.manual_seed(0)
    q = torch.randn(batch, n_heads, dim, device=DEVICE).to(dtype)
    # Pools laid out as KVPool.layer gives them: [S, max_len, Hkv, D] views of [S, Hkv, N, D].
    k_pool = torch.randn(5, n_kv, MAX_LEN, dim, device=DEVICE).to(dtype).transpose(1, 2)
    v_pool = torch.randn(5, n_kv, MAX_LEN, dim, device=DEVICE).to(dtype).transpose(1, 2)
    slots_t = torch.tensor(slots, device=DEVICE)
    lengths_t = torch.tensor(lengths, device=DEVICE, dtype=torch.int32)
    scale = dim**-0.5
    expected = ref.batch_decode_attention(q, k_pool, v_pool, slots_t, lengths_t, scale, window)
    # The reference is row by row the one-sequence reference (checked against SDPA elsewhere).
    for b, (s, n) in enumerate(zip(slots, lengths, strict=True)):
        alone = ref.decode_attention(q[b : b + 1], k_pool[s], v_pool[s], n, scale, window)
        torch.testing.assert_close(expected[b : b + 1], alone)
    out = triton_attention.batch_decode_attention(
        q, k_pool, v_pool, slots_t, lengths_t, scale, window, num_splits=splits
    )
    assert out.dtype == dtype and out.shape == q.shape
    torch.testing.assert_close(out, expected, **_tol(dtype))
    out = kernels.batch_decode_attention(q, k_pool, v_pool, slots_t, lengths_t, scale, window)
    torch.testing.assert_close(out, expected, **_tol(dtype))


def test_batch_arguments_are_checked() -> None:
    q, pool = torch.zeros(2, 4, 16), torch.zeros(3, 8, 2, 16)
    two = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="slots and positions/lengths must both be"):
        kernels.batch_decode_attention(q, pool, pool, torch.tensor([0]), two, 0.25)
    with pytest.raises(ValueError, match="do not group"):
        kernels.batch_decode_attention(torch.zeros(2, 3, 16), pool, pool, two, two, 0.25)
    with pytest.raises(ValueError, match="do not fit pool"):
        kernels.batch_kv_write(pool, pool, torch.zeros(2, 3, 16), torch.zeros(2, 3, 16), two, two)


def test_pool_slots_are_independent_caches() -> None:
    pool = KVPool(3, 2, 2, 10, 4, torch.float32, torch.device("cpu"))
    caches = [pool.slot(i) for i in range(3)]
    assert all(c.k.is_contiguous() and c.length == 0 and c.max_len == 10 for c in caches)
    caches[1].write(1, 3, torch.ones(2, 2, 4), 2 * torch.ones(2, 2, 4))
    assert pool.k[1, 1, :, 3:5].eq(1).all() and pool.v[1, 1, :, 3:5].eq(2).all()
    assert pool.k.count_nonzero() == pool.v.count_nonzero() == 2 * 2 * 4  # nothing else
    # The batched write lands each row in its own slot at its own position, and nowhere else.
    k_layer, v_layer = pool.layer(0)
    rows = torch.arange(1, 3 * 2 * 4 + 1, dtype=torch.float32).view(3, 2, 4)
    slots, positions = torch.tensor([2, 0, 1]), torch.tensor([9, 0, 4])
    kernels.batch_kv_write(k_layer, v_layer, rows, -rows, slots, positions)
    for b, (s, p) in enumerate(zip(slots.tolist(), positions.tolist(), strict=True)):
        torch.testing.assert_close(caches[s].view(0, p, p + 1)[0][:, 0], rows[b])
        torch.testing.assert_close(caches[s].view(0, p, p + 1)[1][:, 0], -rows[b])
    assert pool.k[:, 0].count_nonzero() == rows.numel()
    with pytest.raises(IndexError):
        pool.slot(3)


def _batch_vs_alone(model, prompts: list[list[int]], monkeypatch, n_steps: int = 3) -> None:
    """Decode the prompts together through `BatchDecoder.step` and each alone through a fresh
    Decoder on the torch (SDPA) path; the logits of every step agree."""
    batch = BatchDecoder(model, len(prompts))
    slots = [batch.acquire(p) for p in prompts]
    firsts = [int(batch.prefill(s, p)[0].argmax()) for s, p in zip(slots, prompts, strict=True)]
    positions = torch.tensor([len(p) for p in prompts], device=model.device)
    assert isinstance(batch._ops(slots, positions, []), fast_path.BatchKernelOps)
    tokens, got = firsts, []
    for _ in range(n_steps):
        logits = batch.step(slots, tokens)
        got.append(logits.float())
        tokens = logits.argmax(-1).tolist()
    monkeypatch.setenv("VIBE_KERNELS", "torch")
    for b, (prompt, first) in enumerate(zip(prompts, firsts, strict=True)):
        alone = Decoder(model)
        alone.prefill(prompt)
        tok = first
        for step_logits in got:
            expected = alone.step(tok)[-1].float()
            torch.testing.assert_close(step_logits[b], expected, atol=2e-4, rtol=2e-4)
            tok = int(expected.argmax())  # the batch's greedy token: the same sequence
    for s, prompt in zip(slots, prompts, strict=True):
        assert batch.ids(s)[: len(prompt)] == prompt
        assert batch.slots[s].cache.length == len(prompt) + n_steps


@pytest.mark.skipif(ON_GPU, reason="on a GPU the kernels run natively (test below)")
@pytest.mark.parametrize("kind", ["mistral", "mistral_sw"])
def test_interpreted_batch_step_equals_each_sequence_alone(
    use_triton: None, kind: str, tiny_dir, prompt_ids, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIBE_CPU_KERNELS", "0")  # the fused C step would take the batch
    model = load_model(resolve(tiny_dir(kind)[1]), "cpu", "float32", 64)
    shared = prompt_ids(20, seed=7)
    # Ragged lengths (past the window of 8 for mistral_sw); the third shares 18 tokens with the
    # first, so acquire copies that prefix between pool slots (`_copy_prefix`).
    prompts = [shared, prompt_ids(5, seed=2), shared[:18] + prompt_ids(6, seed=3)]
    _batch_vs_alone(model, prompts, monkeypatch)


@gpu
def test_gpu_batch_step_equals_each_sequence_alone(tiny_dir, prompt_ids, monkeypatch) -> None:
    model = load_model(resolve(tiny_dir("mistral_sw")[1]), "cuda", "float32", 64)
    assert BatchDecoder(model, 2).pool is not None  # CUDA: slots come from one pool
    with pytest.raises(EngineOutOfMemory, match="lower the batch size or the context"):
        BatchDecoder(model, 10**8)  # the pool is reserved up front: too big fails at once
    shared = prompt_ids(20, seed=7)
    prompts = [shared, prompt_ids(5, seed=2), shared[:18] + prompt_ids(6, seed=3)]
    _batch_vs_alone(model, prompts, monkeypatch)


def test_cpu_batch_keeps_lazily_allocated_slots(tiny_dir, monkeypatch) -> None:
    monkeypatch.setenv("VIBE_KERNELS", "torch")
    model = load_model(resolve(tiny_dir("mistral")[1]), "cpu", "float32", 64)
    batch = BatchDecoder(model, 4)
    assert batch.pool is None and batch.stats().nbytes == 0
    batch.acquire([5, 6, 7])
    assert batch.stats().nbytes == model.new_cache().nbytes()
