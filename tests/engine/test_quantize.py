"""`--quantize int8|int4`: groupwise quantization of float checkpoints into GGML blocks, at load
and ahead of time (`vibe engine quantize`).

Oracles: gguf-py's `quantize` (the block bytes); the same blocks dequantised to fp32 (the
kernel's error: relative L2 of all prompt logits within 3%, greedy tokens equal); the original
fp32 checkpoint (the quantization error: int8 = Q8_0 within 5%, measured 2.3-2.7%, greedy equal;
int4 = Q4_1 layers with a Q8_0 embedding and head within 35%, measured 22-24% on these tiny
random dim-64 models with peaky logits, where 4 bits do change greedy picks).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from engine.checkpoint import resolve  # noqa: E402
from engine.cli import main as engine_main  # noqa: E402
from engine.engine import load_model  # noqa: E402
from engine.quant import QuantWeight  # noqa: E402
from engine.quantize import SAVED_JSON, quantize_blocks, save_quantized  # noqa: E402
from tests.engine.test_quant import _greedy, _logits, _rel  # noqa: E402


@pytest.mark.parametrize("qtype", [2, 3, 8])
def test_blocks_are_the_bytes_gguf_py_writes(qtype: int) -> None:
    w = torch.randn(48, 256, generator=torch.Generator().manual_seed(qtype)) * 0.1
    w[0, :32] = 0.0  # an all-zero block (d = 0)
    w[1, :32] = 0.5  # a constant block
    ref = gguf.quants.quantize(w.numpy(), gguf.GGMLQuantizationType(qtype))
    assert torch.equal(quantize_blocks(w, qtype), torch.from_numpy(np.ascontiguousarray(ref)))


@pytest.mark.parametrize(("scheme", "layer_type", "tol"), [("int8", 8, 5e-2), ("int4", 3, 0.35)])
@pytest.mark.parametrize("kind", ["mistral", "mistral_native"])
def test_at_load_and_ahead_of_time_agree_and_track_fp32(
    scheme, layer_type, tol, kind, tiny_dir, prompt_ids, tmp_path
) -> None:
    ckpt = resolve(tiny_dir(kind)[1])
    at_load = load_model(ckpt, "cpu", "float32", 64, quantize=scheme)
    plain = load_model(ckpt, "cpu", "float32", 64)
    lay = at_load.layers[1]
    for m in (lay.wqkv, lay.wo, lay.w13, lay.w2):
        assert isinstance(m, QuantWeight) and m.qtype == layer_type
    assert at_load.embed.qtype == 8 and at_load.lm_head.qtype == 8
    assert isinstance(at_load.norm, torch.Tensor)

    weights = save_quantized(ckpt, scheme, tmp_path / "q")
    saved = load_model(resolve(tmp_path / "q"), "cpu", "float32", 64)
    # The folder holds the blocks themselves; loading it re-quantizes nothing.
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as f:
        assert f.get_tensor("model.layers.1.mlp.down_proj.weight").dtype == torch.uint8
    assert torch.equal(saved.layers[1].w2.data, lay.w2.data)
    assert torch.equal(saved.embed.data, at_load.embed.data)

    # The same blocks dequantised to fp32: the kernel's own error only.
    expanded = load_model(resolve(tmp_path / "q"), "cpu", "float32", 64, dequantize=True)
    ids = prompt_ids(12)
    a, b, ref = _logits(at_load, ids), _logits(saved, ids), _logits(plain, ids)
    assert torch.equal(a, b)
    assert _rel(a, _logits(expanded, ids)) < 3e-2
    assert _greedy(at_load, ids, 8) == _greedy(expanded, ids, 8)
    assert _rel(a, ref) < tol  # the quantization error itself
    if scheme == "int8":
        assert _greedy(at_load, ids, 8) == _greedy(plain, ids, 8)


def test_saved_folder_is_quantized_and_dequantizes_on_request(tiny_dir, tmp_path, capsys) -> None:
    ckpt = resolve(tiny_dir("mistral")[1])
    save_quantized(ckpt, "int8", tmp_path / "q")
    meta = json.loads((tmp_path / "q" / SAVED_JSON).read_text())
    assert meta["types"]["model.layers.0.self_attn.q_proj.weight"] == 8
    saved = resolve(tmp_path / "q")
    plain = load_model(saved, "cpu", "float32", 64, dequantize=True)
    assert isinstance(plain.layers[0].w2, torch.Tensor)
    with pytest.raises(Exception, match="already quantized"):
        load_model(saved, "cpu", "float32", 64, quantize="int4")


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = engine_main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_quantize_then_generate(tiny_dir, tmp_path, capsys) -> None:
    src = str(tiny_dir("mistral_chat")[1])
    out = tmp_path / "int4"
    code, text, _ = _cli(capsys, "quantize", "--model", src, "--to", "int4", "--out", str(out))
    assert code == 0 and "wrote" in text and (out / "tekken.json").is_file()
    ids = "5,6,7,8"
    runs = []
    for flags in (["--model", str(out)], ["--model", src, "--quantize", "int4"]):
        code, text, err = _cli(capsys, "generate", *flags, "--prompt-ids", ids,
                               "--max-tokens", "6", "--device", "cpu", "--json")  # fmt: skip
        assert code == 0, err
        runs.append(json.loads(text)["token_ids"])
    assert runs[0] == runs[1] and len(runs[0]) == 6


def test_cli_errors_are_one_line(tiny_dir, tmp_path, capsys) -> None:
    src = str(tiny_dir("mistral_chat")[1])
    base = ["generate", "--prompt-ids", "5", "--max-tokens", "1", "--device", "cpu"]
    cases = {
        ("--model", src, "--quantize", "int3"): "--quantize must be one of int8, int4",
        ("--model", src, "--quantize", "int4", "--tp", "2"): "drop --tp or --quantize",
    }
    for flags, message in cases.items():
        code, _, err = _cli(capsys, *base, *flags)
        assert code == 1 and message in err and err.count("\n") == 1, err
    from tests.engine.test_quant import write_tiny_gguf

    gguf_path = str(write_tiny_gguf(tmp_path / "t.gguf", 2))
    code, _, err = _cli(capsys, *base, "--model", gguf_path, "--quantize", "int8")
    assert code == 1 and "GGUF file is already quantized" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "quantize", "--model", src, "--to", "int2", "--out", src)
    assert code == 1 and "--quantize must be one of" in err
