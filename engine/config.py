"""Model configuration: one frozen dataclass read from HF `config.json` or Mistral `params.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelNotFoundError, UnsupportedModelError

_HF_TYPES = ("mistral", "ministral3", "llama")


@dataclass(frozen=True)
class YarnConfig:
    """YaRN RoPE scaling parameters, with transformers' names and defaults."""

    factor: float
    original_max_position_embeddings: int
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float | None = None
    mscale_all_dim: float | None = None
    attention_factor: float | None = None
    truncate: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """Decoder-only transformer hyper-parameters (Mistral / Ministral3 / Llama family)."""

    model_type: str
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_embeddings: bool = False
    sliding_window: int | None = None
    yarn: YarnConfig | None = None
    # Llama-4 query scaling (Ministral3): q *= 1 + beta * log(1 + floor(pos / original_max)).
    llama4_beta: float | None = None
    llama4_original_max: int | None = None
    bos_token_id: int | None = 1
    eos_token_ids: tuple[int, ...] = field(default=(2,))

    def __post_init__(self) -> None:
        if self.n_heads % self.n_kv_heads:
            raise UnsupportedModelError(
                f"n_heads ({self.n_heads}) is not a multiple of n_kv_heads ({self.n_kv_heads})"
            )


def _eos_tuple(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (int(value),)


def _yarn_from_rope(rope: dict[str, Any], where: str) -> YarnConfig:
    try:
        return YarnConfig(
            factor=float(rope["factor"]),
            original_max_position_embeddings=int(rope["original_max_position_embeddings"]),
            beta_fast=float(rope.get("beta_fast") or 32.0),
            beta_slow=float(rope.get("beta_slow") or 1.0),
            mscale=rope.get("mscale"),
            mscale_all_dim=rope.get("mscale_all_dim"),
            attention_factor=rope.get("attention_factor"),
            truncate=bool(rope.get("truncate", True)),
        )
    except KeyError as exc:
        raise UnsupportedModelError(f"{where}: yarn rope parameters lack {exc.args[0]!r}") from exc


def config_from_hf(d: dict[str, Any]) -> ModelConfig:
    """Build a ModelConfig from a transformers `config.json` dict."""
    model_type = d.get("model_type")
    if model_type == "mistral3":
        # The wrapper's own tie_word_embeddings decides whether lm_head is tied, as in transformers.
        tie = d.get("tie_word_embeddings")
        d = dict(d.get("text_config") or {})
        if tie is not None:
            d["tie_word_embeddings"] = tie
        model_type = d.get("model_type", "mistral")
    if model_type not in _HF_TYPES:
        raise UnsupportedModelError(
            f"unsupported model_type {model_type!r} (supported: {', '.join(_HF_TYPES)}, mistral3)"
        )
    if d.get("hidden_act", "silu") != "silu":
        raise UnsupportedModelError(f"unsupported hidden_act {d['hidden_act']!r} (only silu)")
    if d.get("attention_bias") or d.get("mlp_bias"):
        raise UnsupportedModelError("linear layers with bias are not supported")
    if d.get("num_local_experts") or d.get("moe"):
        raise UnsupportedModelError("mixture-of-experts models are not supported")
    rope = dict(d.get("rope_parameters") or d.get("rope_scaling") or {})
    if model_type == "ministral3" and not rope:
        rope = {"rope_type": "yarn", "rope_theta": 1e6, "factor": 16.0, "beta_fast": 32.0,
                "original_max_position_embeddings": 16384, "beta_slow": 1.0,
                "mscale_all_dim": 1.0, "mscale": 1.0, "llama_4_scaling_beta": 0.1}  # fmt: skip
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    if rope_type not in ("default", "yarn"):
        raise UnsupportedModelError(f"unsupported rope type {rope_type!r} (default, yarn)")
    yarn = _yarn_from_rope(rope, "config.json") if rope_type == "yarn" else None
    n_heads = int(d["num_attention_heads"])
    dim = int(d["hidden_size"])
    llama4 = rope.get("llama_4_scaling_beta") if model_type == "ministral3" else None
    try:
        return ModelConfig(
            model_type=model_type,
            vocab_size=int(d["vocab_size"]),
            dim=dim,
            n_layers=int(d["num_hidden_layers"]),
            n_heads=n_heads,
            n_kv_heads=int(d.get("num_key_value_heads") or n_heads),
            head_dim=int(d.get("head_dim") or dim // n_heads),
            hidden_dim=int(d["intermediate_size"]),
            norm_eps=float(d.get("rms_norm_eps", 1e-5)),
            rope_theta=float(rope.get("rope_theta", d.get("rope_theta", 10000.0))),
            max_position_embeddings=int(d.get("max_position_embeddings", 32768)),
            tie_embeddings=bool(d.get("tie_word_embeddings", False)),
            sliding_window=d.get("sliding_window"),
            yarn=yarn,
            llama4_beta=float(llama4) if llama4 is not None else None,
            llama4_original_max=int(rope["original_max_position_embeddings"]) if llama4 else None,
            bos_token_id=d.get("bos_token_id", 1),
            eos_token_ids=_eos_tuple(d.get("eos_token_id", 2)),
        )
    except KeyError as exc:
        raise UnsupportedModelError(f"config.json lacks {exc.args[0]!r}") from exc


def config_from_params(p: dict[str, Any]) -> ModelConfig:
    """Build a ModelConfig from a Mistral-native `params.json` dict."""
    if p.get("moe"):
        raise UnsupportedModelError("mixture-of-experts models are not supported")
    yarn = None
    if y := p.get("yarn"):
        # Mistral names: beta/alpha are transformers' beta_fast/beta_slow; the HF conversion
        # sets mscale = mscale_all_dim = 1, i.e. no attention-logit scaling.
        yarn = YarnConfig(
            factor=float(y["factor"]),
            original_max_position_embeddings=int(y["original_max_position_embeddings"]),
            beta_fast=float(y.get("beta", 32.0)),
            beta_slow=float(y.get("alpha", 1.0)),
            mscale=1.0,
            mscale_all_dim=1.0,
        )
    l4 = p.get("llama_4_scaling") or {}
    n_heads = int(p["n_heads"])
    dim = int(p["dim"])
    try:
        return ModelConfig(
            model_type="ministral3" if l4 else "mistral",
            vocab_size=int(p["vocab_size"]),
            dim=dim,
            n_layers=int(p["n_layers"]),
            n_heads=n_heads,
            n_kv_heads=int(p.get("n_kv_heads") or n_heads),
            head_dim=int(p.get("head_dim") or dim // n_heads),
            hidden_dim=int(p["hidden_dim"]),
            norm_eps=float(p.get("norm_eps", 1e-5)),
            rope_theta=float(p.get("rope_theta", 10000.0)),
            max_position_embeddings=int(
                p.get("max_position_embeddings") or p.get("max_seq_len") or 32768
            ),
            tie_embeddings=bool(p.get("tied_embeddings", False)),
            sliding_window=p.get("sliding_window"),
            yarn=yarn,
            llama4_beta=float(l4["beta"]) if l4 else None,
            llama4_original_max=int(l4["original_max_position_embeddings"]) if l4 else None,
        )
    except KeyError as exc:
        raise UnsupportedModelError(f"params.json lacks {exc.args[0]!r}") from exc


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON file, turning I/O and syntax problems into one-line engine errors."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelNotFoundError(f"{path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}") from exc
