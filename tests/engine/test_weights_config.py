"""Checkpoint formats and failure modes: configs, RoPE tables, sharded/FP8 weights, clear errors."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.checkpoint import resolve
from engine.config import config_from_hf, config_from_params
from engine.engine import load_model
from engine.errors import UnsupportedModelError, WeightLoadError
from engine.rope import inv_freq_and_scale, llama4_query_scale
from engine.weights import dequantize_fp8
from tests.fakes import tiny_models


def _logits(path, ids):
    m = load_model(resolve(path), device="cpu", dtype="float32", max_context=64)
    return m.forward(
        torch.tensor(ids), torch.arange(len(ids)), m.new_cache(), all_logits=True
    ).logits


@pytest.mark.parametrize(
    "rope",
    [
        {
            "factor": 16.0,
            "original_max_position_embeddings": 16,
            "mscale": 1.0,
            "mscale_all_dim": 1.0,
        },
        {
            "factor": 8.0,
            "original_max_position_embeddings": 64,
            "mscale": 0.707,
            "mscale_all_dim": 1.0,
        },
        {
            "factor": 4.0,
            "original_max_position_embeddings": 32,
            "beta_fast": 16.0,
            "beta_slow": 2.0,
        },
        {
            "factor": 4.0,
            "original_max_position_embeddings": 32,
            "attention_factor": 1.3,
            "truncate": False,
        },
    ],
)
def test_yarn_matches_transformers(rope):
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    hf = tiny_models.ministral3_config(
        rope_parameters={
            "rope_type": "yarn",
            "rope_theta": 1e6,
            "llama_4_scaling_beta": 0.1,
            **rope,
        }
    )
    ref_inv, ref_scale = ROPE_INIT_FUNCTIONS["yarn"](hf, "cpu")
    inv, scale = inv_freq_and_scale(config_from_hf(hf.to_dict()))
    torch.testing.assert_close(inv, ref_inv, atol=0, rtol=0)
    assert scale == pytest.approx(ref_scale, rel=1e-12)


def test_llama4_query_scale_formula():
    from transformers.models.ministral3.modeling_ministral3 import get_llama_4_attn_scale

    cfg = config_from_hf(tiny_models.ministral3_config().to_dict())
    pos = torch.arange(0, 200)
    ref = get_llama_4_attn_scale(pos[None], 0.1, 16)[0, 0, :, 0]  # [B, 1, T, 1]
    torch.testing.assert_close(llama4_query_scale(cfg, pos), ref)


def test_params_json_maps_mistral_names():
    cfg = config_from_params(
        {"dim": 64, "n_layers": 2, "head_dim": 16, "hidden_dim": 96, "n_heads": 4, "n_kv_heads": 2,
         "norm_eps": 1e-5, "vocab_size": 512, "rope_theta": 1e6, "tied_embeddings": True,
         "sliding_window": 4096, "yarn": {"factor": 16, "original_max_position_embeddings": 16384,
         "beta": 32, "alpha": 1}, "llama_4_scaling": {"original_max_position_embeddings": 16384,
         "beta": 0.1}}
    )  # fmt: skip
    assert (cfg.model_type, cfg.tie_embeddings, cfg.sliding_window) == ("ministral3", True, 4096)
    assert (cfg.yarn.beta_fast, cfg.yarn.beta_slow, cfg.llama4_beta) == (32, 1, 0.1)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"model_type": "gpt2"}, "unsupported model_type 'gpt2'"),
        ({"hidden_act": "gelu"}, "hidden_act"),
        ({"rope_parameters": {"rope_type": "llama3", "rope_theta": 1e4}}, "rope type 'llama3'"),
        ({"num_key_value_heads": 3}, "multiple of n_kv_heads"),
    ],
)
def test_unsupported_configs_are_named(tiny_dir, tmp_path, patch, message):
    src = tiny_dir("mistral")[1]
    shutil.copytree(src, tmp_path / "m")
    cfg = json.loads((src / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**cfg, **patch}))
    with pytest.raises(UnsupportedModelError, match=message):
        resolve(tmp_path / "m")


def test_missing_and_misshaped_tensors_name_the_tensor(tiny_dir, tmp_path):
    src = tiny_dir("mistral")[1]
    tensors = load_file(str(src / "model.safetensors"))
    missing = tmp_path / "missing"
    shutil.copytree(src, missing)
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, str(missing / "model.safetensors"))
    with pytest.raises(
        WeightLoadError, match=r"missing tensor model\.layers\.1\.mlp\.up_proj\.weight .*\(96, 64\)"
    ):
        _logits(missing, [1, 2])
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    cfg = json.loads((src / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 80}))
    with pytest.raises(
        WeightLoadError,
        match=r"mlp\.\w+_proj\.weight has shape \(\d+, \d+\), expected \(\d+, \d+\)",
    ):
        _logits(bad, [1, 2])


def test_sharded_checkpoint_with_index_loads(tiny_dir, tmp_path, prompt_ids):
    model, path = tiny_dir("mistral")
    model.save_pretrained(tmp_path, max_shard_size="100KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    ids = prompt_ids(12)
    torch.testing.assert_close(_logits(tmp_path, ids), _logits(path, ids), atol=0, rtol=0)


def test_fp8_weights_are_dequantised(tiny_dir, tmp_path, prompt_ids):
    model, path = tiny_dir("mistral")
    shutil.copytree(path, tmp_path / "fp8")
    tensors = load_file(str(path / "model.safetensors"))
    reference = {}
    for name in list(tensors):
        if "proj" in name:
            w = tensors[name]
            scale = w.abs().max() / 448.0
            q = (w / scale).to(torch.float8_e4m3fn)
            tensors[name] = q
            tensors[name.replace(".weight", ".weight_scale_inv")] = scale.reshape(1)
            reference[name] = q.float() * scale
    save_file(tensors, str(tmp_path / "fp8" / "model.safetensors"))
    dequantised = copy.deepcopy(model)
    dequantised.load_state_dict(reference, strict=False)
    ids = prompt_ids(12)
    with torch.no_grad():
        ref = dequantised(torch.tensor([ids])).logits[0]
    torch.testing.assert_close(_logits(tmp_path / "fp8", ids), ref, atol=1e-4, rtol=0)


def test_block_fp8_scales_expand_over_128_blocks():
    w = torch.randn(130, 260)
    scale = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    q = w.to(torch.float8_e4m3fn)
    expected = q.float().clone()
    for i in range(130):
        for j in range(260):
            expected[i, j] *= scale[i // 128, j // 128]
    torch.testing.assert_close(dequantize_fp8(q, scale), expected)


@pytest.mark.parametrize(
    "scale", [torch.tensor(0.5), torch.rand(130) + 0.5, torch.rand(2, 3) + 0.5], ids=str
)
@pytest.mark.parametrize("dim", [0, 1])
def test_fp8_slices_dequantise_like_the_slice_of_the_whole(scale, dim):
    """Tensor parallelism reads one rank's rows or columns of an FP8 tensor: each slice must
    meet the part of the per-tensor, per-row or per-block scale that covers it."""
    q = torch.randn(130, 260).to(torch.float8_e4m3fn)
    whole = dequantize_fp8(q, scale)
    start, stop = (60, 129) if dim == 0 else (100, 250)  # across a 128-block boundary
    part = q[start:stop] if dim == 0 else q[:, start:stop]
    at = (start, 0) if dim == 0 else (0, start)
    got = dequantize_fp8(part, scale, tuple(q.shape), at)
    torch.testing.assert_close(got, whole[start:stop] if dim == 0 else whole[:, start:stop])
