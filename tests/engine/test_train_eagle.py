"""scripts/train_eagle.py end to end on a tiny chat model: it generates answers, trains within
its time budget, saves a head the engine loads, and speculative decoding with that head still
reproduces plain greedy decoding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from engine.eagle_io import load_head
from engine.engine import Engine
from engine.spec import EagleDrafter
from tests.engine.spec_helpers import plain_greedy, run_spec

ROOT = Path(__file__).resolve().parents[2]


def test_train_a_head_then_decode_with_it(tiny_dir, tmp_path: Path) -> None:
    _, target_dir = tiny_dir("mistral_chat")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "example.py").write_text("def add(a, b):\n    return a + b\n" * 20)
    out, data = tmp_path / "head", tmp_path / "data.json"
    cmd = [
        sys.executable, str(ROOT / "scripts" / "train_eagle.py"), "--target", str(target_dir),
        "--out", str(out), "--minutes", "0.5", "--gen-minutes", "0.1", "--gen-batch", "1",
        "--gen-tokens", "12", "--prompts", "8", "--corpus", str(corpus), "--corpus-tokens",
        "200", "--draft-vocab", "64", "--seq", "48", "--batch", "2", "--threads", "1",
        "--data-cache", str(data),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "held out" in proc.stdout and "saved" in proc.stdout

    config = json.loads((out / "config.json").read_text())
    assert json.dumps(config).count("held_out_top1") == 1
    assert len(json.loads(data.read_text())["seqs"]) >= 2  # answers kept for a rerun

    engine = Engine.load(str(target_dir), max_context=256)
    head = load_head(out, engine.model)
    assert head.reduced_vocab and head.d2t.shape[0] == 64
    prompt = engine.tokenizer.encode_chat([{"role": "user", "content": "Sort a list."}], None, None)
    want = plain_greedy(engine.model, prompt, 16)
    got, dec, _ = run_spec(engine.model, EagleDrafter(head), 4, prompt, 16)
    assert got == want
    assert dec.stats.rounds > 0 and torch.isfinite(head.fc).all()
