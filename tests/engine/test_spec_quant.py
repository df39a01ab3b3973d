"""EAGLE speculative decoding over a target whose weights stay quantized (GGUF blocks, and
`--quantize`): the head shares the stored embedding and LM head, and greedy speculative
output equals plain greedy output of the same quantized model."""

from __future__ import annotations

import torch

from engine.checkpoint import resolve
from engine.decoder import Decoder
from engine.eagle import EAGLE1, EAGLE3, head_spec_for, random_head
from engine.eagle_io import load_head, save_head
from engine.engine import Engine, load_model
from engine.events import Timings
from engine.quant import QuantWeight
from engine.sampling import SamplingParams
from engine.spec import EagleDrafter, Speculator
from tests.engine.test_quant import write_tiny_gguf


def _generate(model, prompt, n, speculator=None) -> list[int]:
    dec = Decoder(model)
    greedy = SamplingParams()
    return list(dec.generate(prompt, greedy, n, None, frozenset(), Timings(), speculator))


def test_eagle_heads_draft_for_a_quantized_gguf_target(tmp_path):
    path = resolve(write_tiny_gguf(tmp_path / "t.gguf", 8))  # Q8_0
    target = load_model(path, "cpu", "float32", 64)
    assert isinstance(target.embed, QuantWeight) and isinstance(target.lm_head, QuantWeight)
    prompt = torch.randint(0, 256, (10,), generator=torch.Generator().manual_seed(4)).tolist()
    want = _generate(target, prompt, 16)
    for kind, vocab in ((EAGLE1, None), (EAGLE1, 100), (EAGLE3, 100)):
        spec = head_spec_for(target, kind, n_layers=1, draft_vocab_size=vocab)
        folder = save_head(random_head(spec, target, seed=1), tmp_path / f"{kind}-{vocab}")
        speculator = Speculator(EagleDrafter(load_head(folder, target)), 3)
        assert _generate(target, prompt, 16, speculator) == want
        assert speculator.stats.rounds > 0


def test_engine_loads_a_draft_head_with_quantize(tiny_dir, tmp_path, prompt_ids):
    src = tiny_dir("mistral_chat")[1]
    plain = Engine.load(src, device="cpu", dtype="float32", max_context=128, quantize="int8")
    assert isinstance(plain.model.layers[0].wqkv, QuantWeight)
    spec = head_spec_for(plain.model, EAGLE1, n_layers=1, draft_vocab_size=500)
    folder = save_head(random_head(spec, plain.model, seed=0), tmp_path / "head")
    eng = Engine.load(src, draft=folder, spec_k=3, device="cpu", dtype="float32",
                      max_context=128, quantize="int8")  # fmt: skip
    assert isinstance(eng.model.lm_head, QuantWeight)
    prompt = prompt_ids(9, seed=5)
    want = list(plain.generate(prompt, 12, stop_at_eos=False))
    assert list(eng.generate(prompt, 12, stop_at_eos=False)) == want
    assert eng.speculator.stats.rounds > 0
