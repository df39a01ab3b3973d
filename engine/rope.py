"""Rotary position embeddings (default and YaRN) computed exactly as transformers does."""

from __future__ import annotations

import math

import torch

from engine.config import ModelConfig, YarnConfig


def _yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def _yarn_inv_freq(base: float, dim: int, y: YarnConfig) -> tuple[torch.Tensor, float]:
    factor = y.factor
    if y.attention_factor is not None:
        attention_factor = float(y.attention_factor)
    elif y.mscale and y.mscale_all_dim:
        attention_factor = _yarn_mscale(factor, y.mscale) / _yarn_mscale(factor, y.mscale_all_dim)
    else:
        attention_factor = _yarn_mscale(factor)

    def correction_dim(rotations: float) -> float:
        orig = y.original_max_position_embeddings
        return (dim * math.log(orig / (rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(y.beta_fast), correction_dim(y.beta_slow)
    if y.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # avoid a zero-width ramp
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    pos_freqs = base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    extrapolation, interpolation = 1.0 / pos_freqs, 1.0 / (factor * pos_freqs)
    extra_factor = 1 - ramp
    inv_freq = interpolation * (1 - extra_factor) + extrapolation * extra_factor
    return inv_freq, attention_factor


def inv_freq_and_scale(cfg: ModelConfig) -> tuple[torch.Tensor, float]:
    """Inverse frequencies [head_dim // 2] and the cos/sin scaling factor."""
    dim = cfg.head_dim
    if cfg.yarn is not None:
        return _yarn_inv_freq(cfg.rope_theta, dim, cfg.yarn)
    exponents = torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim
    return 1.0 / (cfg.rope_theta**exponents), 1.0


def rope_tables(cfg: ModelConfig, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables [max_len, head_dim] in fp32, indexed by absolute position."""
    inv_freq, scale = inv_freq_and_scale(cfg)
    freqs = torch.arange(max_len, dtype=torch.int64)[:, None].float() * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * scale, emb.sin() * scale


def llama4_query_scale(cfg: ModelConfig, positions: torch.Tensor) -> torch.Tensor | None:
    """Per-position query multiplier [T] for Llama-4 scaling, or None when the model has none."""
    if cfg.llama4_beta is None or cfg.llama4_original_max is None:
        return None
    pos = positions.to(torch.float32)
    return 1 + cfg.llama4_beta * torch.log(1 + torch.floor(pos / cfg.llama4_original_max))


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate half-split pairs; x [T, H, D], cos/sin [T, 1, D]."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
