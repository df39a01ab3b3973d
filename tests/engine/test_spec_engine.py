"""Speculative decoding through the Engine and `vibe engine generate --draft --spec-k --json`."""

from __future__ import annotations

import json

import pytest

from engine.cli import main as engine_cli
from engine.eagle import EAGLE1, head_spec_for, random_head
from engine.eagle_io import save_head
from engine.engine import Engine
from engine.errors import ModelNotFoundError


@pytest.fixture(scope="module")
def chat_path(tiny_dir):
    return tiny_dir("mistral_chat")[1]


@pytest.fixture(scope="module")
def head_dir(chat_path, tmp_path_factory):
    plain = Engine.load(chat_path, device="cpu", dtype="float32", max_context=256)
    spec = head_spec_for(plain.model, EAGLE1, n_layers=1, draft_vocab_size=2000)
    path = save_head(random_head(spec, plain.model, seed=0), tmp_path_factory.mktemp("head"))
    plain.close()
    return path


def test_engine_with_a_draft_head_generates_the_plain_tokens(chat_path, head_dir, prompt_ids):
    plain = Engine.load(chat_path, device="cpu", dtype="float32", max_context=256)
    spec = Engine.load(chat_path, draft=head_dir, spec_k=3, dtype="float32", max_context=256)
    for seed in (1, 2):  # the second call reuses both caches' common prefix
        prompt = prompt_ids(12, seed=seed)
        want = list(plain.generate(prompt, 20, stop_at_eos=False))
        assert list(spec.generate(prompt, 20, stop_at_eos=False)) == want
    assert spec.speculator.stats.rounds > 0
    assert list(spec.generate(prompt, 20, stop_at_eos=False, speculate=False)) == want
    assert spec.speculator.stats.rounds > 0
    assert spec.last_timings.decode_tokens == 20


def test_cli_generate_json_reports_speculation(chat_path, head_dir, capsys):
    args = ["generate", "--model", str(chat_path), "--prompt-ids", "5,6,7,8,9", "--max-tokens", "12",
            "--dtype", "float32", "--json"]  # fmt: skip
    assert engine_cli(args) == 0
    plain = json.loads(capsys.readouterr().out)
    assert engine_cli([*args, "--draft", str(head_dir), "--spec-k", "3"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert spec["token_ids"] == plain["token_ids"]
    stats = spec["speculative"]
    assert stats["num_speculative_tokens"] == 3 and stats["mean_accepted_length"] >= 1.0
    assert len(stats["per_position_acceptance"]) == 3


def test_bad_draft_options_are_one_line_errors(chat_path, tmp_path, capsys):
    with pytest.raises(ModelNotFoundError, match="EAGLE head"):
        Engine.load(chat_path, draft=tmp_path)
    args = ["generate", "--model", str(chat_path), "--prompt-ids", "5,6", "--max-tokens", "2"]
    assert engine_cli([*args, "--spec-k", "3"]) == 1
    assert "--spec-k needs --draft" in capsys.readouterr().err
