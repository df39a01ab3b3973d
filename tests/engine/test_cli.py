"""`vibe engine generate|bench` through engine.cli.main on a tiny checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from engine.cli import main


@pytest.fixture(scope="module")
def chat_model(tiny_dir):
    return tiny_dir("mistral_chat")


def test_generate_json_prints_ids_text_and_timings(chat_model, capsys):
    ref_model, path = chat_model
    rc = main(["generate", "--model", str(path), "--prompt-ids", "1,900,901,902", "--max-tokens", "5",
               "--device", "cpu", "--dtype", "float32", "--max-context", "64", "--json"])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    ref_model.generation_config.eos_token_id = None
    with torch.no_grad():
        ref = ref_model.generate(
            torch.tensor([[1, 900, 901, 902]]), max_new_tokens=5, do_sample=False, pad_token_id=0
        )
    expected = ref[0, 4:].tolist()
    eos = 2
    if eos in expected:  # generate stops at (and includes) the end-of-sequence token
        expected = expected[: expected.index(eos) + 1]
    assert out["prompt_ids"] == [1, 900, 901, 902]
    assert out["token_ids"] == expected
    assert isinstance(out["text"], str)
    assert out["timings"]["prefill_ms"] > 0 and out["timings"]["prompt_tokens"] == 4


def test_generate_text_prompt_streams_and_reports_timing(chat_model, capsys):
    rc = main(["generate", "--model", str(chat_model[1]), "--prompt", "Hello", "--max-tokens", "3",
               "--temperature", "0.8", "--seed", "3", "--max-context", "64"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0
    assert "tok/s" in captured.err


def test_bench_reports_prefill_and_decode(chat_model, capsys):
    rc = main(["bench", "--model", str(chat_model[1]), "--prompt-tokens", "16", "--max-tokens", "4",
               "--repeat", "1", "--max-context", "64", "--json"])  # fmt: skip
    assert rc == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["prefill_tok_s"] > 0 and row["decode_tok_s"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tp", "0"], "--tp must be >= 1"),
        (["--tp", "3"], "does not divide 4 attention heads"),
        (["--draft", "x", "--spec-k", "3"], "EAGLE head x is not a folder"),
        (["--prompt-ids", "1,2,x"], "comma-separated integers"),
        (["--prompt-ids", ",".join(["5"] * 70)], "context holds 64"),
        (["--dtype", "int3"], "unknown dtype"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_1(chat_model, capsys, extra, message):
    argv = ["generate", "--model", str(chat_model[1]), "--max-tokens", "2", "--max-context", "64"]
    if "--prompt-ids" not in extra:
        argv += ["--prompt-ids", "1,2"]
    assert main(argv + extra) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_missing_model_and_missing_arguments(tmp_path, capsys):
    assert (
        main(["generate", "--model", str(tmp_path / "nope"), "--prompt", "x", "--max-tokens", "1"])
        == 1
    )
    assert "does not exist" in capsys.readouterr().err
    assert main(["generate", "--model", "x"]) == 1
    assert capsys.readouterr().err.startswith("error: ")
