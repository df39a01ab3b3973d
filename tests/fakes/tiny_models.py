"""Tiny random-weight transformers models (Mistral, Ministral3, Mistral3, Llama) saved to disk.

Weights are scaled up so logits are peaky: greedy decoding then has no near-ties and fp32
comparisons against transformers are meaningful.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

VOCAB = 512
DIMS: dict[str, Any] = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=512,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)


def _peaky(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / p.shape[-1] ** 0.5))
        if hasattr(model, "lm_head"):
            model.lm_head.weight.mul_(4.0)
    return model.eval()


def mistral(
    sliding_window: int | None = None, seed: int = 0, vocab_size: int = VOCAB
) -> torch.nn.Module:
    from transformers import MistralConfig, MistralForCausalLM

    dims = {**DIMS, "vocab_size": vocab_size}
    cfg = MistralConfig(**dims, sliding_window=sliding_window, rope_theta=10000.0)
    return _peaky(MistralForCausalLM(cfg), seed)


def llama(tie: bool = True, seed: int = 0) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(**{**DIMS, "tie_word_embeddings": tie}, rope_theta=100000.0)
    return _peaky(LlamaForCausalLM(cfg), seed)


def ministral3_config(**overrides: Any) -> Any:
    from transformers import Ministral3Config

    # A short original context so YaRN and the Llama-4 query scaling matter within a test.
    rope = {
        "rope_type": "yarn",
        "rope_theta": 1000000.0,
        "factor": 16.0,
        "original_max_position_embeddings": 16,
        "max_position_embeddings": DIMS["max_position_embeddings"],
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "mscale_all_dim": 1.0,
        "mscale": 1.0,
        "llama_4_scaling_beta": 0.1,
    }
    return Ministral3Config(**{**DIMS, "rope_parameters": rope, **overrides})


def ministral3(seed: int = 0) -> torch.nn.Module:
    from transformers import Ministral3ForCausalLM

    return _peaky(Ministral3ForCausalLM(ministral3_config()), seed)


def mistral3(seed: int = 0) -> torch.nn.Module:
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration, PixtralVisionConfig

    vision = PixtralVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        image_size=32, patch_size=16, head_dim=16,
    )  # fmt: skip
    cfg = Mistral3Config(vision_config=vision, text_config=ministral3_config())
    return _peaky(Mistral3ForConditionalGeneration(cfg), seed)


def save_hf(model: torch.nn.Module, path: Path) -> Path:
    model.save_pretrained(path, safe_serialization=True)
    return path


def _permute_to_native(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """transformers' half-split q/k rows -> Mistral-native interleaved rows."""
    rows, cols = w.shape
    return w.view(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


def save_native(
    model: torch.nn.Module, path: Path, params_extra: dict[str, Any] | None = None
) -> Path:
    """Write params.json + consolidated.safetensors with Mistral-native names and layouts."""
    from safetensors.torch import save_file

    cfg = model.config
    sd = {k: v for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {
        "tok_embeddings.weight": sd["model.embed_tokens.weight"],
        "norm.weight": sd["model.norm.weight"],
        "output.weight": sd["lm_head.weight"],
    }
    names = {
        "self_attn.q_proj": "attention.wq", "self_attn.k_proj": "attention.wk",
        "self_attn.v_proj": "attention.wv", "self_attn.o_proj": "attention.wo",
        "input_layernorm": "attention_norm", "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2",
        "mlp.up_proj": "feed_forward.w3",
    }  # fmt: skip
    for i in range(cfg.num_hidden_layers):
        for hf, native in names.items():
            w = sd[f"model.layers.{i}.{hf}.weight"]
            if hf == "self_attn.q_proj":
                w = _permute_to_native(w, cfg.num_attention_heads)
            elif hf == "self_attn.k_proj":
                w = _permute_to_native(w, cfg.num_key_value_heads)
            out[f"layers.{i}.{native}.weight"] = w
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, str(path / "consolidated.safetensors"))
    params = {
        "dim": cfg.hidden_size, "n_layers": cfg.num_hidden_layers, "head_dim": cfg.head_dim,
        "hidden_dim": cfg.intermediate_size, "n_heads": cfg.num_attention_heads,
        "n_kv_heads": cfg.num_key_value_heads, "norm_eps": cfg.rms_norm_eps,
        "vocab_size": cfg.vocab_size, "max_position_embeddings": cfg.max_position_embeddings,
        "rope_theta": cfg.rope_parameters["rope_theta"], "tied_embeddings": False,
        **(params_extra or {}),
    }  # fmt: skip
    (path / "params.json").write_text(json.dumps(params), encoding="utf-8")
    return path


def mistral_common_tokenizer_file(
    path: Path, version: str = "v13", vocab_size: int | None = None
) -> Path:
    """A real Tekken vocabulary shipped with mistral-common, re-declared as `version` with the
    control tokens ([THINK], [ARGS], [CALL_ID], [MODEL_SETTINGS]...) newer versions need.
    `vocab_size` keeps only the first ids (bytes and the most frequent merges) for tiny models."""
    import mistral_common
    from mistral_common.tokens.tokenizers.base import SpecialTokens

    src = Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"
    data = json.loads(src.read_text(encoding="utf-8"))
    n_special = data["config"]["default_num_special_tokens"]
    named = [t.value for t in SpecialTokens]
    specials = [
        {
            "rank": i,
            "token_str": named[i] if i < len(named) else f"<SPECIAL_{i}>",
            "is_control": True,
        }
        for i in range(n_special)
    ]
    data["special_tokens"] = specials
    if vocab_size is not None:
        data["config"]["default_vocab_size"] = vocab_size
        data["vocab"] = data["vocab"][: vocab_size - n_special]
    data["config"]["version"] = version
    data.pop("image", None)
    if version == "v15":
        data["model_settings_builder"] = {
            "reasoning_effort": {"type": "enum", "accepts_none": True, "default": "none",
                                 "values": ["none", "high"]},
        }  # fmt: skip
    out = path / "tekken.json"
    path.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data), encoding="utf-8")
    return out
