"""scripts/engine_models.py: a random checkpoint written under the engine's own weight names
loads into the engine, and its transformers twin computes the engine's logits."""

from __future__ import annotations

import torch

from engine.checkpoint import resolve
from engine.config import ModelConfig
from engine.engine import load_model
from scripts.engine_models import hf_twin, random_checkpoint, read_bandwidth


def test_random_checkpoint_and_its_transformers_twin_agree(tmp_path) -> None:
    cfg = ModelConfig(
        model_type="mistral", vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2,
        head_dim=8, hidden_dim=48, norm_eps=1e-5, rope_theta=1e4, max_position_embeddings=64,
    )  # fmt: skip
    ckpt = resolve(random_checkpoint(tmp_path, cfg, seed=3))
    model = load_model(ckpt, "cpu", torch.float32, max_context=32)
    twin = hf_twin(model.cfg, ckpt.tensors(set(model.weight_targets())))
    ids = torch.tensor([5, 9, 2, 33, 7, 1])
    ours = model.forward(ids, torch.arange(6), model.new_cache(), all_logits=True).logits
    with torch.no_grad():
        theirs = twin(ids[None]).logits[0]
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    assert read_bandwidth("cpu", gib=0.01, repeats=2) > 0
