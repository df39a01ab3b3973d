"""Q4_0 / Q4_1 / Q8_0 weights repacked at load into tiles of rows (cpu_quant_tile.c): the same
values, the same products as the row-by-row kernel up to float summation order, a row's result
independent of the rows beside it, and models that load packed compute what unpacked ones do.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

gguf = pytest.importorskip("gguf")

from engine.checkpoint import resolve  # noqa: E402
from engine.engine import load_model  # noqa: E402
from engine.kernels import cpu_quant  # noqa: E402
from engine.quant import QuantWeight, StackedWeight  # noqa: E402
from tests.engine.test_quant import _logits, write_tiny_gguf  # noqa: E402
from tests.engine.test_quant_k import ALL_TYPES, quantize_k  # noqa: E402

TILED = {n: t for n, t in ALL_TYPES.items() if t in cpu_quant.TILE_TYPES}
K_QUANTS = (12, 13, 14)
pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None or not cpu_quant.packable(2, 8, 32),
    reason="needs the C kernel with AVX2 (tiles are not used without it)",
)


def _encode(values: np.ndarray, qtype: int) -> np.ndarray:
    if qtype in K_QUANTS:
        return quantize_k(values, qtype)
    return gguf.quants.quantize(values, gguf.GGMLQuantizationType(qtype))


def _blocks(rows: int, cols: int, qtype: int, seed: int) -> torch.Tensor:
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) * 0.05
    return torch.from_numpy(np.ascontiguousarray(_encode(w.numpy(), qtype)))


def _packed(data: torch.Tensor, qtype: int, cols: int) -> QuantWeight:
    w = QuantWeight(data.clone(), qtype, cols)
    w.pack()
    assert w.packed
    return w


@pytest.mark.parametrize("name", TILED)
def test_packing_keeps_every_value_and_row(name: str) -> None:
    qtype = TILED[name]
    data = _blocks(48, 512, qtype, seed=qtype)
    w = _packed(data, qtype, 512)
    assert w.data.shape[1] >= data.shape[1] and not torch.equal(w.data[:, : data.shape[1]], data)
    ref = gguf.quants.dequantize(data.numpy(), gguf.GGMLQuantizationType(qtype))
    assert torch.equal(w.dequantize(), torch.from_numpy(ref))
    ids = torch.tensor([47, 0, 9, 9, 31])
    rows = w[ids]
    assert not rows.packed and torch.equal(rows.data, data[ids])
    mask = torch.zeros(48, dtype=torch.bool)
    mask[[3, 40]] = True  # index tensors as torch reads them: masks, negative ids
    assert torch.equal(w[mask].data, data[mask]) and torch.equal(
        w[torch.tensor([-1])].data, data[-1:]
    )
    assert torch.equal(w.rows(ids.view(5, 1), torch.float32)[:, 0], torch.from_numpy(ref)[ids])
    view = w[8:24]  # whole tiles: a view that is itself packed
    assert view.packed and view.data.data_ptr() == w.data[8].data_ptr()
    assert torch.equal(view.dequantize(), torch.from_numpy(ref[8:24]))
    with pytest.raises(ValueError, match="8-row boundaries"):
        w[4:12]
    with pytest.raises(IndexError):
        w[torch.tensor([48])]


@pytest.mark.parametrize("name", TILED)
@pytest.mark.parametrize("m", [1, 2, 7, 8, 9, 17, 130])
def test_packed_products_equal_the_row_kernel(name: str, m: int) -> None:
    qtype = TILED[name]
    data = _blocks(72, 512, qtype, seed=m)
    x = torch.randn(m, 512, generator=torch.Generator().manual_seed(m + 1))
    packed = _packed(data, qtype, 512).linear(x)
    exact = F.linear(x, cpu_quant.dequantize(data, qtype, 512))
    assert float((packed - exact).norm() / exact.norm()) < 1e-2
    if m < cpu_quant.DEQUANT_ROWS:  # (from there on, unpacked blocks take MKL on fp32)
        rows = cpu_quant.qlinear(x, data, qtype, 512)
        torch.testing.assert_close(packed, rows, rtol=0, atol=2e-5 * float(rows.abs().max()))


@pytest.mark.parametrize("name", TILED)
def test_a_packed_row_does_not_depend_on_the_rows_beside_it(name: str) -> None:
    qtype = TILED[name]
    w = _packed(_blocks(40, 256, qtype, seed=2), qtype, 256)
    x = torch.randn(19, 256, generator=torch.Generator().manual_seed(3))
    full = w.linear(x)
    for m in (1, 3, 8, 9, 16):
        assert torch.equal(w.linear(x[:m]), full[:m])
    assert torch.equal(w.linear(x[5:6]), full[5:6])
    # Nor on where its tile starts: a view one tile over computes the same rows.
    for m in (1, 9):
        assert torch.equal(w[8:40].linear(x[:m]), full[:m, 8:40])


def test_only_whole_tiles_of_tile_types_pack() -> None:
    odd = QuantWeight(_blocks(12, 64, 3, seed=1), 3, 64)  # 12 rows: not whole tiles of 8
    odd.pack()
    assert not odd.packed
    q2k = QuantWeight(torch.zeros(16, 84, dtype=torch.uint8), 10, 256)  # Q2_K: no kernel
    q2k.pack()
    assert not q2k.packed


def _unpacked(model) -> None:
    """Undo the loader's packing in place (the row kernel's layout)."""

    def undo(w):
        if isinstance(w, StackedWeight):
            return StackedWeight([undo(p) for p in w.parts])
        if isinstance(w, QuantWeight) and w.packed:
            return w[torch.arange(w.shape[0])]
        return w

    tied = model.lm_head is model.embed
    model.embed = undo(model.embed)
    model.lm_head = model.embed if tied else undo(model.lm_head)
    for lay in model.layers:
        for k, v in vars(lay).items():
            setattr(lay, k, undo(v))


@pytest.mark.parametrize("name", TILED)
def test_a_model_loads_packed_and_computes_what_the_row_kernel_does(name, tmp_path) -> None:
    k = TILED[name] in K_QUANTS  # K-quant rows are whole 256-value super-blocks
    path = tmp_path / f"tiny-{name}.gguf"
    dims = {"dim": 256, "hidden": 512, "encode": _encode} if k else {}
    ckpt = resolve(write_tiny_gguf(path, TILED[name], **dims))
    packed = load_model(ckpt, "cpu", "float32", 64)
    lay = packed.layers[0]
    for m in (packed.embed, packed.lm_head, lay.wqkv, lay.wo, lay.w13, lay.w2):
        assert isinstance(m, QuantWeight) and m.packed
    rows = load_model(ckpt, "cpu", "float32", 64)
    _unpacked(rows)
    assert not rows.layers[0].w2.packed
    ids = [3, 17, 99, 4, 250, 8, 8, 41, 0, 1]
    # Tiles and rows sum in different orders, so a later product's int8 activations can round
    # one step apart (each ~1/127 of its row's largest value): compare to 1e-3 of the logits.
    for prompt in (ids, ids[:1]):  # prefill, and the fused single-row step
        a, b = _logits(packed, prompt), _logits(rows, prompt)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-3 * float(b.abs().max()))
