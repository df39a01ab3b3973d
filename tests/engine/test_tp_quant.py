"""GGUF weights stay as stored blocks under CPU tensor parallelism (gloo, 2 processes).

Two tiny random GGUF models: Q8_0 with Q4_1 parts (the tied embedding and LM head over an odd
vocabulary, one down projection, and layer 1's v, which makes its fused q|k|v a stack of Q8_0
and Q4_1 parts), and a K-quant mix (Q4_K, Q5_K embedding, Q6_K down projections split on
256-value blocks, Q8_0 output projections). TP=2 gives TP=1's greedy tokens, and on the first
model its logits to 1e-4, while the dequantise-then-fp32 path is 5% away (int8 activation
blocks): so both ranks multiply the stored blocks. The K-quant model's logits are held to a
relative 2e-3 instead: its activations' int8 rounding turns the all-reduce's ulp-level
summation differences into flips (measured: a 1e-7 relative nudge of the norms moves its
logits by up to 5e-4 relative, the first model's by 3e-7). Rank 1's shard, loaded in this
process, holds blocks whose values are exactly its slice of the model. A shard that would
split a block is a one-line error raised before any worker starts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from engine.checkpoint import resolve  # noqa: E402
from engine.config import ModelConfig  # noqa: E402
from engine.decoder import Decoder  # noqa: E402
from engine.eagle import EAGLE1, head_spec_for, random_head  # noqa: E402
from engine.engine import load_model  # noqa: E402
from engine.errors import BadRequestError  # noqa: E402
from engine.events import Timings  # noqa: E402
from engine.kernels import cpu_quant  # noqa: E402
from engine.model import Transformer  # noqa: E402
from engine.parallel.loader import check_blocks, load_shard  # noqa: E402
from engine.parallel.shard import TPContext  # noqa: E402
from engine.parallel.workers import draft_target  # noqa: E402
from engine.quant import QuantWeight, StackedWeight, quant_plan  # noqa: E402
from engine.sampling import SamplingParams  # noqa: E402
from engine.spec import EagleDrafter, Speculator  # noqa: E402
from tests.engine.test_quant import (  # noqa: E402
    _greedy,
    _logits,
    _quantize_np,
    _rel,
    needs_compiler,
    write_tiny_gguf,
)
from tests.engine.test_quant_k import quantize_k  # noqa: E402

Q4_1, Q8_0, Q4_K, Q5_K, Q6_K = 3, 8, 12, 13, 14


def _encode(values: np.ndarray, qtype: int) -> np.ndarray:
    return quantize_k(values, qtype) if qtype in (Q4_K, Q5_K, Q6_K) else _quantize_np(values, qtype)


def _loud(values: np.ndarray, qtype: int) -> np.ndarray:
    """Layer matrices 16x write_tiny_gguf's scale (the embedding, of unit scale, as is): the
    layers then move the greedy tokens away from repeating the tied embedding's argmax."""
    return _encode(values * 16 if values.std() < 0.1 else values, qtype)


def _blocks_model(path: Path) -> Path:
    odd = {"token_embd.weight": Q4_1, "blk.0.ffn_down.weight": Q4_1, "blk.1.attn_v.weight": Q4_1}
    return write_tiny_gguf(path, Q8_0, odd, vocab=255, encode=_loud)


def _k_model(path: Path) -> Path:
    odd = {"token_embd.weight": Q5_K}
    for i in range(2):  # o_proj shards are 128 columns: half a K block, so Q8_0 there
        odd |= {f"blk.{i}.ffn_down.weight": Q6_K, f"blk.{i}.attn_output.weight": Q8_0}
    return write_tiny_gguf(path, Q4_K, odd, dim=256, hidden=512, encode=_encode)


MODELS = {"q8_0+q4_1": _blocks_model, "k-quants": _k_model}
EXACT = {"q8_0+q4_1": True, "k-quants": False}  # logits to 1e-4, else to a relative 2e-3


@pytest.fixture(scope="module", params=list(MODELS))
def models(request, tmp_path_factory):
    path = MODELS[request.param](tmp_path_factory.mktemp("tpq") / f"{request.param}.gguf")
    ckpt = resolve(path)
    one = load_model(ckpt, "cpu", "float32", 64)
    two = load_model(ckpt, "cpu", "float32", 64, tp=2)
    plain = load_model(ckpt, "cpu", "float32", 64, dequantize=True)
    yield ckpt, one, two, plain, EXACT[request.param]
    two.shutdown()


def _matrices(model: Transformer) -> list:
    return [model.embed, model.lm_head] + [
        m for lay in model.layers for m in (lay.wqkv, lay.wo, lay.w13, lay.w2)
    ]


def _stored(m) -> bool:
    parts = m.parts if isinstance(m, StackedWeight) else [m]
    return all(isinstance(p, QuantWeight) for p in parts)


@needs_compiler
def test_tp2_logits_and_greedy_tokens_equal_tp1(models) -> None:
    _, one, two, plain, exact = models
    assert cpu_quant.enabled(), "cpu_quant.c failed to compile or load"
    assert all(_stored(m) for m in _matrices(two))  # rank 0: no matrix expanded to fp32
    assert two.weight_bytes() < plain.weight_bytes() / 2 / 3
    vocab = one.cfg.vocab_size
    ids = torch.randint(0, vocab, (12,), generator=torch.Generator().manual_seed(1)).tolist()
    a, b, ref = _logits(one, ids), _logits(two, ids), _logits(plain, ids)
    assert a.shape == b.shape == (12, vocab)
    a1, b1 = _logits(one, ids[:1]), _logits(two, ids[:1])
    if exact:
        torch.testing.assert_close(b, a, rtol=0, atol=1e-4)
        torch.testing.assert_close(b1, a1, rtol=0, atol=1e-4)
        # The dequantised model is the same model (5% apart: int8 activation blocks through
        # loud layers) but far outside 1e-4: a rank that had expanded its blocks would fail.
        assert (a - ref).abs().max() > 1e-2 and _rel(a, ref) < 0.1
    else:
        assert _rel(b, a) < 2e-3 and _rel(b1, a1) < 2e-3
    assert _greedy(two, ids, 8) == _greedy(one, ids, 8)


def test_eagle_drafts_for_a_quantized_target_under_tp(models) -> None:
    ckpt, _, two, _, _ = models
    view = draft_target(two, ckpt)  # full vocabulary on rank 0, where the head drafts
    head = random_head(head_spec_for(view, EAGLE1, n_layers=1), view, seed=2)
    spec = Speculator(EagleDrafter(head), 3)
    prompt = torch.randint(0, 200, (10,), generator=torch.Generator().manual_seed(4)).tolist()
    greedy, none = SamplingParams(), frozenset[int]()
    want = list(Decoder(two).generate(prompt, greedy, 12, None, none, Timings()))
    got = list(Decoder(two).generate(prompt, greedy, 12, None, none, Timings(), spec))
    assert got == want and spec.stats.rounds > 0


def test_rank1_shard_is_its_slice_of_the_stored_blocks(models) -> None:
    ckpt, _, _, plain, _ = models
    cfg = ckpt.config
    model = Transformer(cfg, 16, torch.float32, torch.device("cpu"), TPContext(1, 2),
                        quant_plan(ckpt, torch.device("cpu"), False))  # fmt: skip
    load_shard(model, ckpt)  # no collective runs while loading: no group needed
    assert all(_stored(m) for m in _matrices(model))
    hid, D = cfg.hidden_dim, cfg.head_dim
    half_q, kv = cfg.n_heads // 2 * D, cfg.n_kv_heads // 2 * D
    rows = model.local.vocab_size  # ceil(V / 2)
    embed = model.embed.dequantize()
    torch.testing.assert_close(embed[: cfg.vocab_size - rows], plain.embed[rows:], atol=1e-6,
                               rtol=1e-6)  # fmt: skip
    assert not embed[cfg.vocab_size - rows :].any()  # the padding row of an odd vocabulary
    for mine, full in zip(model.layers, plain.layers, strict=True):
        q0, k0 = cfg.n_heads * D, cfg.n_heads * D + cfg.n_kv_heads * D
        want = {
            "wqkv": torch.cat([full.wqkv[half_q:q0], full.wqkv[k0 - kv : k0], full.wqkv[-kv:]]),
            "wo": full.wo[:, half_q:],
            "w13": torch.cat([full.w13[hid // 2 : hid], full.w13[hid + hid // 2 :]]),
            "w2": full.w2[:, hid // 2 :],
        }
        for name, expected in want.items():
            got = getattr(mine, name).dequantize()
            torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6, msg=name)


def test_narrow_keeps_blocks_and_refuses_to_split_one() -> None:
    gen = torch.Generator().manual_seed(3)
    for qtype, block in ((Q4_1, 32), (Q4_K, 256)):
        values = torch.randn(8, 4 * block, generator=gen)
        w = QuantWeight(torch.from_numpy(_encode(values.numpy(), qtype)), qtype, 4 * block)
        full = w.dequantize()
        cols = w.narrow(1, block, 2 * block)
        assert cols.shape == (8, 2 * block) and cols.data.is_contiguous()
        assert torch.equal(cols.dequantize(), full[:, block : 3 * block])
        rows = w.narrow(0, 2, 3)
        assert rows.data.data_ptr() == w.data[2].data_ptr()  # a view
        assert torch.equal(rows.dequantize(), full[2:5])
        with pytest.raises(ValueError, match=f"would split {block}-value"):
            w.narrow(1, block // 2, block)


def test_a_shard_that_splits_a_block_is_a_one_line_error(tmp_path) -> None:
    # An FFN of 96: each rank's down projection gets 48 columns, one and a half Q8_0 blocks.
    ckpt = resolve(write_tiny_gguf(tmp_path / "ffn96.gguf", Q8_0, hidden=96))
    with pytest.raises(BadRequestError) as err:
        load_model(ckpt, "cpu", "float32", 64, tp=2)
    msg = str(err.value)
    assert "\n" not in msg and "--dequantize" in msg
    assert "32-value Q8_0 blocks of model.layers.0.mlp.down_proj.weight" in msg
    # K-quant output projections of 4 heads of 64 over 2 ranks: 128 columns of 256-value blocks.
    cfg = ModelConfig(
        model_type="llama", vocab_size=256, dim=256, n_layers=1, n_heads=4, n_kv_heads=2,
        head_dim=64, hidden_dim=512, norm_eps=1e-5, rope_theta=1e4, max_position_embeddings=64,
    )  # fmt: skip
    down = "model.layers.0.mlp.down_proj.weight"
    check_blocks(cfg, {down: Q4_K, "model.layers.0.self_attn.q_proj.weight": Q4_K}, 2)
    with pytest.raises(BadRequestError, match=r"256-value Q4_K blocks of .*o_proj"):
        check_blocks(cfg, {down: Q4_K, "model.layers.0.self_attn.o_proj.weight": Q4_K}, 2)
