"""Triton greedy argmax and exponential-race sampling over the vocabulary, in two passes.

Pass 1 reduces blocks of the vocabulary in parallel; pass 2 picks the best block per row. Ties go
to the lowest index in both passes, which matches `torch.argmax`.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _block_argmax_kernel(
    x_ptr,
    noise_ptr,
    best_val_ptr,
    best_idx_ptr,
    n_cols,
    stride_x,
    stride_noise,
    n_blocks,
    DIVIDE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    blk = tl.program_id(1)
    cols = blk * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=float("-inf")).to(tl.float32)
    if DIVIDE:
        e = tl.load(noise_ptr + row * stride_noise + cols, mask=mask, other=1.0).to(tl.float32)
        # IEEE division, bit-identical to torch's `probs / noise`.
        x = tl.math.div_rn(x, e)
    val, idx = tl.max(x, 0, return_indices=True, return_indices_tie_break_left=True)
    tl.store(best_val_ptr + row * n_blocks + blk, val)
    tl.store(best_idx_ptr + row * n_blocks + blk, (blk * BLOCK + idx).to(tl.int64))


@triton.jit
def _final_argmax_kernel(best_val_ptr, best_idx_ptr, out_ptr, n_blocks, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    mask = offs < n_blocks
    vals = tl.load(best_val_ptr + row * n_blocks + offs, mask=mask, other=float("-inf"))
    _, blk = tl.max(vals, 0, return_indices=True, return_indices_tie_break_left=True)
    tl.store(out_ptr + row, tl.load(best_idx_ptr + row * n_blocks + blk))


def _argmax_rows(x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    squeeze = x.dim() == 1
    x2 = x.reshape(1, -1) if squeeze else x
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    n_rows, n_cols = x2.shape
    if noise is not None:
        noise = noise.reshape(n_rows, n_cols)
        if noise.stride(-1) != 1:
            noise = noise.contiguous()
    block = min(4096, triton.next_power_of_2(n_cols))
    n_blocks = triton.cdiv(n_cols, block)
    best_val = torch.empty((n_rows, n_blocks), dtype=torch.float32, device=x.device)
    best_idx = torch.empty((n_rows, n_blocks), dtype=torch.int64, device=x.device)
    _block_argmax_kernel[(n_rows, n_blocks)](
        x2,
        x2 if noise is None else noise,
        best_val,
        best_idx,
        n_cols,
        x2.stride(0),
        0 if noise is None else noise.stride(0),
        n_blocks,
        DIVIDE=noise is not None,
        BLOCK=block,
        num_warps=8 if block >= 2048 else 4,
    )
    out = torch.empty(n_rows, dtype=torch.int64, device=x.device)
    _final_argmax_kernel[(n_rows,)](
        best_val, best_idx, out, n_blocks, BLOCK=max(2, triton.next_power_of_2(n_blocks))
    )
    return out[0] if squeeze else out


def argmax(logits: torch.Tensor) -> torch.Tensor:
    return _argmax_rows(logits, None)


def sample_from_probs(probs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return _argmax_rows(probs, noise)
