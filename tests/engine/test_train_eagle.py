"""scripts/train_eagle.py end to end on a tiny chat model: it generates answers, trains within
its time budget, saves a head the engine loads, and speculative decoding with that head still
reproduces plain greedy decoding."""

from __future__ import annotations

import importlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.eagle import EAGLE1, EAGLE3, EagleHead, head_spec_for
from engine.eagle_io import load_head
from engine.engine import Engine
from engine.spec import EagleDrafter
from tests.engine.spec_helpers import plain_greedy, run_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", [EAGLE1, EAGLE3])
def test_train_a_head_then_decode_with_it(tiny_dir, tmp_path: Path, kind: str) -> None:
    _, target_dir = tiny_dir("mistral_chat")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "example.py").write_text("def add(a, b):\n    return a + b\n" * 20)
    out, data = tmp_path / "head", tmp_path / "data.pt"
    cmd = [
        sys.executable, "-m", "scripts.train_eagle", "--target", str(target_dir),
        "--out", str(out), "--minutes", "0.5", "--gen-minutes", "0.1", "--gen-batch", "1",
        "--gen-tokens", "12", "--prompts", "8", "--corpus", str(corpus), "--corpus-tokens",
        "200", "--draft-vocab", "64", "--seq", "48", "--batch", "2", "--threads", "1",
        "--data-cache", str(data), "--kind", kind,
    ]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(ROOT)}  # `scripts` is a folder of the checkout
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "held out" in proc.stdout and "saved" in proc.stdout

    config = (out / "config.json").read_text()
    assert config.count("held_out_top1") == 1
    kept = torch.load(data)  # answers and their features kept for a rerun
    assert len(kept["seqs"]) >= 2
    assert [len(s) for s in kept["seqs"]] == [len(f) for f in kept["feats"]]

    engine = Engine.load(str(target_dir), max_context=256)
    head = load_head(out, engine.model)
    assert head.kind == kind and head.reduced_vocab and head.d2t.shape[0] == 64
    prompt = engine.tokenizer.encode_chat([{"role": "user", "content": "Sort a list."}], None, None)
    want = plain_greedy(engine.model, prompt, 16)
    got, dec, _ = run_spec(engine.model, EagleDrafter(head), 4, prompt, 16)
    assert got == want
    assert dec.stats.rounds > 0 and torch.isfinite(head.fc).all()


def _train_eagle_module():
    return importlib.import_module("scripts.train_eagle")


def _eagle_data_module():
    return importlib.import_module("scripts.eagle_data")


@pytest.mark.parametrize("capture", [(), (0, 1)])
def test_batched_generation_records_the_targets_own_features(tiny_dir, capture) -> None:
    """The features captured while the transformers twin generates (left-padded batch, one
    step at a time) are the engine's hidden states for the same tokens, position for position
    (final normed, then the outputs of the captured layers EAGLE-3 reads), and the greedy
    answer is the engine's greedy answer."""
    _, target_dir = tiny_dir("mistral_chat")
    engine = Engine.load(str(target_dir), max_context=256)
    eagle_data = _eagle_data_module()
    prompts = ["Sort a list.", "Reverse the words of a sentence, keeping punctuation in place."]
    seqs, feats = eagle_data.generate_batched(
        engine, prompts, seconds=120, max_tokens=10, batch=2, seed=0, dtype=torch.float32,
        capture=capture,
    )  # fmt: skip
    assert len(seqs) == 8  # greedy, then three sampled passes over both prompts
    for ids, f in zip(seqs, feats, strict=True):
        want = eagle_data.featurize(engine.model, [ids], capture)[0]
        assert f.shape == (len(ids), engine.model.cfg.dim * (1 + len(capture)))
        torch.testing.assert_close(f, want, atol=2e-4, rtol=1e-3)
    for text, ids in zip(prompts, seqs[:2], strict=True):
        prompt = eagle_data.code_prompt_ids(engine, text)
        assert len(ids) > len(prompt)
        assert ids[len(prompt) :] == plain_greedy(engine.model, prompt, len(ids) - len(prompt))


def test_eagle3_warm_start_passes_the_last_captured_layer_through(tiny_dir) -> None:
    """An EAGLE-3 head starts as the identity on its highest feature layer (residual branches at
    zero), with its own LM head equal to the target's rows for its draft vocabulary, and the
    training batches feed it those captured layers at p and the target's final feature at p+1."""
    _, target_dir = tiny_dir("mistral_chat")
    target = Engine.load(str(target_dir), max_context=256).model
    train_eagle = _train_eagle_module()
    vd = target.cfg.vocab_size // 2
    head = EagleHead(head_spec_for(target, EAGLE3, n_layers=1, draft_vocab_size=vd), target)
    ids = torch.randperm(target.cfg.vocab_size, generator=torch.Generator().manual_seed(0))[:vd]
    head.d2t.copy_(ids.sort().values - torch.arange(vd))
    train_eagle.init_from_target(head, target, seed=0)
    assert torch.equal(head.lm_head, target.lm_head[head.draft_to_target])

    seq = torch.randint(3, target.cfg.vocab_size, (20,), generator=torch.Generator().manual_seed(1))
    capture = head.capture_layers
    feats = _eagle_data_module().featurize(target, [seq.tolist()], capture)[0]
    dim = target.cfg.dim
    toks, inp, nxt, pos, _ = train_eagle.batch(
        [(seq, feats, 0)], 1, 32, random.Random(0), target.device, dim
    )
    n = len(seq) - 1
    torch.testing.assert_close(inp[0, :n], feats[:n, dim:])  # captured layers at p
    torch.testing.assert_close(nxt[0, :n, :dim], feats[1:, :dim])  # final feature at p+1
    assert torch.equal(toks[0, :n], seq[1:])
    with torch.no_grad():
        state = head.run(toks, inp, pos, None, from_target=True)[0, :n]
    last = feats[:n, -dim:]  # the highest captured layer
    cos = torch.nn.functional.cosine_similarity(state, last, dim=-1)
    assert bool((cos > 0.99).all()), cos.min()


def test_feature_loss_counts_only_the_pairs_that_count(tiny_dir) -> None:
    """The smooth-L1 term is the mean over the unmasked pairs alone: padding and prompt pairs
    neither add to it nor dilute it."""
    _, target_dir = tiny_dir("mistral_chat")
    target = Engine.load(str(target_dir), max_context=256).model
    train_eagle = _train_eagle_module()
    head = EagleHead(head_spec_for(target, EAGLE1, n_layers=1), target)
    train_eagle.init_from_target(head, target, seed=0)
    gen = torch.Generator().manual_seed(0)
    seqs = [torch.randint(3, target.cfg.vocab_size, (n,), generator=gen) for n in (40, 23)]
    feats = _eagle_data_module().featurize(target, [s.tolist() for s in seqs], ())
    data = [(s, f, start) for s, f, start in zip(seqs, feats, (5, 0), strict=True)]
    b = train_eagle.batch(data, 3, 32, random.Random(0), target.device, target.cfg.dim)
    toks, inp, nxt, pos, mask = b
    assert not bool(mask.all())  # the batch has padding and prompt pairs
    with torch.no_grad():
        reg, _, _ = train_eagle.losses(head, target.lm_head, b, 16, 0.0, gen, depth=1)
        state = head.run(toks, inp, pos, None, from_target=True)
    want = torch.nn.functional.smooth_l1_loss(state[mask], nxt[mask])
    torch.testing.assert_close(reg, want)
    assert not torch.allclose(reg, torch.nn.functional.smooth_l1_loss(state, nxt))


def test_a_base_model_without_chat_template_trains_on_plain_prompts() -> None:
    """Self-distillation prompts of a base model are its plain text, not a traceback."""
    from types import SimpleNamespace

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from engine.tokenizer import HFChatTokenizer

    vocab = {"<unk>": 0, "<s>": 1, "def": 2, "add": 3, "(": 4, ")": 5}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>")
    assert not fast.chat_template
    engine = SimpleNamespace(tokenizer=HFChatTokenizer(fast))  # all the prompt code reads
    eagle_data = _eagle_data_module()
    assert eagle_data.code_prompt_ids(engine, "def add ( )") == fast.encode("def add ( )")
    prompts = ["def add", "add ( )"]
    seqs = [[*eagle_data.code_prompt_ids(engine, p), 5] for p in prompts]
    assert [i for i, _ in eagle_data.match_prompts(engine, prompts, seqs)] == [0, 1]
