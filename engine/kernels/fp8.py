"""FP8 (e4m3) weights: dequantisation and a linear layer that uses `torch._scaled_mm` on GPUs
with FP8 tensor cores (compute capability >= 8.9) and dequantise + matmul everywhere else.

Scales follow the HF checkpoints (`weight_scale_inv`, despite the name, multiplies): one
per tensor, one per output row, or one per 128x128 block (DeepSeek / Mistral "fine-grained").
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448
DEFAULT_BLOCK = (128, 128)


def scale_kind(weight: torch.Tensor, scale: torch.Tensor, block_size: tuple[int, int]) -> str:
    """'tensor', 'row' or 'block' for a [out, in] weight; ValueError for any other scale shape."""
    out_f, in_f = weight.shape
    if scale.numel() == 1:
        return "tensor"
    if tuple(scale.shape) in ((out_f,), (out_f, 1)):
        return "row"
    blocks = (-(-out_f // block_size[0]), -(-in_f // block_size[1]))
    if tuple(scale.shape) == blocks:
        return "block"
    raise ValueError(
        f"fp8 scale of shape {tuple(scale.shape)} fits neither per-tensor, per-row {out_f} nor "
        f"{block_size[0]}x{block_size[1]} blocks {blocks} of weight {tuple(weight.shape)}"
    )


def _check_weight(weight: torch.Tensor) -> None:
    if weight.dtype != FP8_DTYPE or weight.dim() != 2:
        raise ValueError(f"expected a 2-D {FP8_DTYPE} weight, got {weight.dtype} {weight.dim()}-D")


def dequantize_fp8(
    weight: torch.Tensor,
    scale: torch.Tensor,
    block_size: tuple[int, int] = DEFAULT_BLOCK,
    dtype: torch.dtype = torch.bfloat16,
) -> torch.Tensor:
    """`weight.float() * scale` broadcast per tensor / row / block, returned in `dtype`."""
    _check_weight(weight)
    kind = scale_kind(weight, scale, block_size)
    w = weight.float()
    s = scale.to(weight.device).float()
    if kind == "tensor":
        w = w * s.reshape(())
    elif kind == "row":
        w = w * s.reshape(-1, 1)
    else:
        out_f, in_f = weight.shape
        # Expand each block's scale over its block, then crop the ragged last row/column.
        s = s.repeat_interleave(block_size[0], 0).repeat_interleave(block_size[1], 1)
        w = w * s[:out_f, :in_f]
    return w.to(dtype)


def quantize_fp8(
    weight: torch.Tensor, block_size: tuple[int, int] | None = DEFAULT_BLOCK
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight_fp8, scale_inv) with each block's (or, for None, the tensor's) amax mapped to 448."""
    if weight.dim() != 2:
        raise ValueError(f"quantize_fp8: expected a 2-D weight, got {weight.dim()}-D")
    w = weight.float()
    if block_size is None:
        scale = (w.abs().amax() / FP8_MAX).clamp(min=1e-12)
        return (w / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE), scale.reshape(1)
    out_f, in_f = w.shape
    b0, b1 = block_size
    n0, n1 = -(-out_f // b0), -(-in_f // b1)
    padded = F.pad(w, (0, n1 * b1 - in_f, 0, n0 * b0 - out_f))
    amax = padded.reshape(n0, b0, n1, b1).abs().amax(dim=(1, 3))  # [n0, n1]
    scale = (amax / FP8_MAX).clamp(min=1e-12)
    full = scale.repeat_interleave(b0, 0).repeat_interleave(b1, 1)[:out_f, :in_f]
    return (w / full).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE), scale


@functools.cache
def _device_has_fp8_mma(device_index: int) -> bool:
    return torch.cuda.get_device_capability(device_index) >= (8, 9)


def scaled_mm_supported(device: torch.device) -> bool:
    """True on CUDA devices of compute capability >= 8.9 (Ada, Hopper and later)."""
    return device.type == "cuda" and _device_has_fp8_mma(device.index or 0)


_scaled_mm_broken = False


def _scaled_mm_linear(
    x2: torch.Tensor, weight: torch.Tensor, w_scale: torch.Tensor, kind: str, out_dtype
) -> torch.Tensor:
    """x2 [M, K] @ weight.T via FP8 tensor cores, quantising x on the fly (per tensor or per row)."""
    xf = x2.float()
    if kind == "tensor":
        x_scale = (xf.abs().amax() / FP8_MAX).clamp(min=1e-12)
        b_scale = w_scale.float().reshape(())
    else:  # row-wise scales on both sides
        x_scale = (xf.abs().amax(dim=1, keepdim=True) / FP8_MAX).clamp(min=1e-12)  # [M, 1]
        b_scale = w_scale.float().reshape(1, -1)  # [1, N]
    xq = (xf / x_scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    # weight [N, K] row-major is the column-major [K, N] operand _scaled_mm wants.
    y = torch._scaled_mm(xq, weight.t(), scale_a=x_scale, scale_b=b_scale, out_dtype=out_dtype)
    return y[0] if isinstance(y, tuple) else y  # torch < 2.4 also returned amax


def fp8_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor | None = None,
    block_size: tuple[int, int] = DEFAULT_BLOCK,
) -> torch.Tensor:
    """`x @ dequantize_fp8(weight, scale).T + bias` for x [..., in]; output in x's dtype.

    On FP8-capable GPUs, per-tensor scales (and per-row scales with bf16 activations) run on
    `torch._scaled_mm` with x quantised per tensor/row, which costs a little accuracy; block
    scales and every other device dequantise to x's dtype first."""
    global _scaled_mm_broken
    _check_weight(weight)
    kind = scale_kind(weight, scale, block_size)
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"fp8_linear: x has {x.shape[-1]} features, weight expects {weight.shape[1]}"
        )
    n_out, n_in = weight.shape
    scale = scale.to(x.device)  # a wrong-device scale must not look like a _scaled_mm failure
    fast = (
        not _scaled_mm_broken
        and scaled_mm_supported(x.device)
        and (kind == "tensor" or (kind == "row" and x.dtype == torch.bfloat16))
        and n_out % 16 == 0
        and n_in % 16 == 0
    )
    if fast:
        x2 = x.reshape(-1, n_in)
        try:
            y = _scaled_mm_linear(x2, weight, scale, kind, x.dtype)
        except RuntimeError as exc:  # an unsupported layout or torch build: fall back for good
            _scaled_mm_broken = True
            warnings.warn(
                f"torch._scaled_mm unavailable ({exc}); dequantising FP8 weights", stacklevel=2
            )
        else:
            if bias is not None:
                y = y + bias.to(y.dtype)
            return y.reshape(*x.shape[:-1], n_out)
    w = dequantize_fp8(weight, scale, block_size, dtype=x.dtype)
    return F.linear(x, w, None if bias is None else bias.to(x.dtype))
