"""The CPU small-batch linear kernel (engine/kernels/cpu_linear.c) against F.linear."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

from engine.kernels import cpu_linear
from engine.kernels.cpu_linear import linear

needs_compiler = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


@needs_compiler
def test_the_kernel_builds_where_a_compiler_exists() -> None:
    assert cpu_linear.enabled(), "cpu_linear.c failed to compile or load"


@needs_compiler
@pytest.mark.parametrize("m", [1, 2, 3, 5, 8, 11, 16])
@pytest.mark.parametrize(("n", "k"), [(61, 576), (960, 576), (37, 100), (8, 16), (3, 7)])
def test_matches_torch_for_every_row_count_and_odd_shapes(m: int, n: int, k: int) -> None:
    gen = torch.Generator().manual_seed(m * 1000 + n + k)
    x = torch.randn(m, k, generator=gen)
    w = torch.randn(n, k, generator=gen)
    torch.testing.assert_close(linear(x, w), F.linear(x, w), rtol=1e-5, atol=1e-4)


@needs_compiler
def test_a_row_does_not_depend_on_how_many_rows_come_with_it() -> None:
    """Verification of K drafts must score each position exactly as decoding would."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 576, generator=gen)
    w = torch.randn(1000, 576, generator=gen)
    full = linear(x, w)
    for m in (1, 2, 5, 9, 16):
        assert torch.equal(linear(x[:m], w), full[:m])


@needs_compiler
def test_leading_dims_strides_and_views() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 64, generator=gen)
    w = torch.randn(96, 64, generator=gen)
    torch.testing.assert_close(linear(x, w), F.linear(x, w), rtol=1e-5, atol=1e-4)
    strided = torch.randn(5, 128, generator=gen)[:, ::2]  # last dim not contiguous
    torch.testing.assert_close(linear(strided, w), F.linear(strided, w), rtol=1e-5, atol=1e-4)
    rows = torch.randn(200, 64, generator=gen)[40:140]  # a row slice of a bigger weight
    torch.testing.assert_close(linear(x, rows), F.linear(x, rows), rtol=1e-5, atol=1e-4)


def test_outside_its_range_it_is_exactly_f_linear() -> None:
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(32, 64, generator=gen)
    x = torch.randn(17, 64, generator=gen)
    assert torch.equal(linear(x, w), F.linear(x, w))
    half = torch.randn(4, 64, generator=gen).half()
    assert torch.equal(linear(half, w.half()), F.linear(half, w.half()))


def test_gradients_flow_through_the_torch_path() -> None:
    w = torch.randn(8, 16, requires_grad=True)
    x = torch.randn(4, 16)
    linear(x, w).sum().backward()
    assert w.grad is not None and torch.allclose(w.grad, x.sum(0).expand(8, 16))


def test_switched_off_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cpu_linear.ENV_VAR, "0")
    assert not cpu_linear.enabled()
    x, w = torch.randn(5, 64), torch.randn(32, 64)
    assert torch.equal(linear(x, w), F.linear(x, w))


def test_without_a_compiler_it_falls_back(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    cpu_linear._library.cache_clear()
    try:
        assert not cpu_linear.enabled()
        x, w = torch.randn(5, 64), torch.randn(32, 64)
        assert torch.equal(linear(x, w), F.linear(x, w))
        assert not list(tmp_path.rglob("*.so"))  # nothing half-written left behind
    finally:
        cpu_linear._library.cache_clear()
