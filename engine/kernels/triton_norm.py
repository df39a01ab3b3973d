"""Triton RMSNorm, optionally fused with the residual add (one program per row)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _rmsnorm_kernel(
    x_ptr,
    res_ptr,
    w_ptr,
    out_ptr,
    res_out_ptr,
    n_cols,
    eps,
    HAS_RESIDUAL: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    offs = row * n_cols + cols
    h = tl.load(x_ptr + offs, mask=mask, other=0.0)
    if HAS_RESIDUAL:
        # Add in the activation dtype (one rounding), exactly like `x + residual` in torch.
        h = h + tl.load(res_ptr + offs, mask=mask, other=0.0)
        tl.store(res_out_ptr + offs, h, mask=mask)
    hf = h.to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(hf * hf, axis=0) / n_cols + eps)
    # Round to the activation dtype before the weight, as HF does; the fp32 product of two
    # 16-bit floats is exact, so rounding it once equals a native 16-bit multiply.
    normed = (hf * rstd).to(out_ptr.dtype.element_ty).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(out_ptr.dtype.element_ty).to(tl.float32)
    tl.store(out_ptr + offs, (normed * w).to(out_ptr.dtype.element_ty), mask=mask)


def add_rmsnorm(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    n_cols = x.shape[-1]
    x2 = x.reshape(-1, n_cols).contiguous()
    out = torch.empty_like(x2)
    if residual is None:
        res2, res_out = x2, x2
    else:
        res2 = residual.reshape(-1, n_cols).to(x.dtype).contiguous()
        res_out = torch.empty_like(x2)
    block = triton.next_power_of_2(n_cols)
    _rmsnorm_kernel[(x2.shape[0],)](
        x2,
        res2,
        weight.contiguous(),
        out,
        res_out,
        n_cols,
        eps,
        HAS_RESIDUAL=residual is not None,
        BLOCK=block,
        num_warps=min(16, max(1, block // 256)),
    )
    new_residual = x if residual is None else res_out.view(x.shape)
    return out.view(x.shape), new_residual


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return add_rmsnorm(x, None, weight, eps)[0]
