"""Engine kernels: the torch references against independent implementations (transformers, SDPA),
and every Triton kernel against its reference (under TRITON_INTERPRET=1 on CPU, natively on GPU)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ON_GPU = torch.cuda.is_available()
if not ON_GPU:
    # Triton reads TRITON_INTERPRET when a kernel is decorated (module import), not when triton
    # itself is imported, so this must happen before the first engine.kernels.triton_* import.
    os.environ["TRITON_INTERPRET"] = "1"

from engine import kernels  # noqa: E402
from engine.kernels import reference as ref  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "cuda" if ON_GPU else "cpu"
TRITON_MODULES = [
    "engine.kernels.triton_norm",
    "engine.kernels.triton_rotary",
    "engine.kernels.triton_kv",
    "engine.kernels.triton_attention",
]
# The interpreter has no bf16; bf16 runs only on a GPU.
DTYPES = [torch.float32, torch.float16] + ([torch.bfloat16] if ON_GPU else [])
gpu = pytest.mark.skipif(not ON_GPU, reason="needs CUDA")


def _tol(dtype: torch.dtype) -> dict[str, float]:
    return {
        torch.float32: {"atol": 1e-5, "rtol": 1e-5},
        torch.float16: {"atol": 2e-3, "rtol": 2e-3},
        torch.bfloat16: {"atol": 2e-2, "rtol": 2e-2},
    }[dtype]


@pytest.fixture
def use_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the dispatcher to Triton; reload kernel modules decorated before interpret mode."""
    pytest.importorskip("triton")
    from triton.runtime.interpreter import InterpretedFunction

    monkeypatch.setenv("VIBE_KERNELS", "triton")
    for name in TRITON_MODULES:
        module = importlib.import_module(name)
        jitted = [v for k, v in vars(module).items() if k.startswith("_") and k.endswith("_kernel")]
        if not ON_GPU and not all(isinstance(v, InterpretedFunction) for v in jitted):
            importlib.reload(module)


def _rand(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, device=DEVICE).to(dtype)


# --- dispatcher ---------------------------------------------------------------------------


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.zeros(1)
    monkeypatch.setenv("VIBE_KERNELS", "torch")
    assert kernels.backend_for(cpu) == "torch"
    monkeypatch.setenv("VIBE_KERNELS", "auto")
    assert kernels.backend_for(cpu) == "torch"  # CPU tensors never pick Triton on their own
    monkeypatch.setenv("VIBE_KERNELS", "cuda")
    with pytest.raises(ValueError, match="VIBE_KERNELS must be one of"):
        kernels.backend_for(cpu)
    if kernels.triton_available():
        monkeypatch.setenv("VIBE_KERNELS", "triton")
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)
        with pytest.raises(RuntimeError, match="needs CUDA tensors"):
            kernels.rmsnorm(cpu.reshape(1, 1), torch.ones(1), 1e-6)


def test_works_without_triton_and_imports_it_lazily() -> None:
    script = textwrap.dedent(
        """
        import os, sys
        os.environ.pop("VIBE_KERNELS", None)
        import torch
        import engine.kernels as k
        out = k.rmsnorm(torch.ones(2, 4), torch.ones(4), 1e-6)
        assert "triton" not in sys.modules, "importing/using engine.kernels on CPU loaded triton"
        sys.modules["triton"] = None  # what an absent install looks like to importlib
        k.triton_available.cache_clear()
        assert not k.triton_available()
        assert k.rmsnorm(torch.ones(2, 4), torch.ones(4), 1e-6).shape == (2, 4)
        os.environ["VIBE_KERNELS"] = "triton"
        try:
            k.rmsnorm(torch.ones(2, 4), torch.ones(4), 1e-6)
        except RuntimeError as exc:
            print("error:", exc)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "error: VIBE_KERNELS=triton but triton cannot be imported" in proc.stdout


def test_shape_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="last dim"):
        kernels.rmsnorm(torch.zeros(2, 8), torch.ones(6), 1e-6)
    with pytest.raises(ValueError, match="does not fit cache"):
        kernels.decode_attention(
            torch.zeros(1, 3, 8), torch.zeros(5, 2, 8), torch.zeros(5, 2, 8), 1, 1.0
        )
    with pytest.raises(ValueError, match="length 9 outside"):
        kernels.decode_attention(
            torch.zeros(1, 4, 8), torch.zeros(5, 2, 8), torch.zeros(5, 2, 8), 9, 1.0
        )
    with pytest.raises(ValueError, match="do not fit cache"):
        kernels.kv_cache_write(
            torch.zeros(5, 2, 8),
            torch.zeros(5, 2, 8),
            torch.zeros(2, 2, 8),
            torch.zeros(2, 2, 8),
            torch.tensor([0]),
        )


# --- references against independent implementations --------------------------------------


def test_reference_norm_and_rotary_match_transformers() -> None:
    modeling = pytest.importorskip("transformers.models.mistral.modeling_mistral")
    config = pytest.importorskip("transformers").MistralConfig(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0
    )
    torch.manual_seed(0)
    x = torch.randn(2, 5, 64)
    norm = modeling.MistralRMSNorm(64, eps=1e-5)
    norm.weight.data = torch.randn(64)
    torch.testing.assert_close(ref.rmsnorm(x, norm.weight, 1e-5), norm(x))
    residual = torch.randn(2, 5, 64)
    normed, hidden = ref.add_rmsnorm(x, residual, norm.weight, 1e-5)
    torch.testing.assert_close(hidden, x + residual)
    torch.testing.assert_close(normed, norm(x + residual))

    rope = modeling.MistralRotaryEmbedding(config)
    positions = torch.tensor([[3, 4, 5, 17]])
    cos, sin = rope(x, positions)  # [1, T, D]
    q, k = torch.randn(4, 4, 16), torch.randn(4, 2, 16)  # [T, H, D]
    q_hf, k_hf = modeling.apply_rotary_pos_emb(
        q.transpose(0, 1)[None], k.transpose(0, 1)[None], cos, sin
    )
    q_out, k_out = ref.apply_rotary(q, k, cos[0], sin[0])
    torch.testing.assert_close(q_out, q_hf[0].transpose(0, 1))
    torch.testing.assert_close(k_out, k_hf[0].transpose(0, 1))


@pytest.mark.parametrize("window", [None, 4])
def test_reference_attention_matches_sdpa(window: int | None) -> None:
    torch.manual_seed(0)
    n_q, n_heads, n_kv, dim, length = 3, 8, 2, 16, 11
    q = torch.randn(n_q, n_heads, dim)
    k_cache, v_cache = torch.randn(20, n_kv, dim), torch.randn(20, n_kv, dim)
    out = ref.decode_attention(q, k_cache, v_cache, length, 0.3, window)
    q_pos = torch.arange(length - n_q, length)[:, None]
    k_pos = torch.arange(length)[None, :]
    mask = (k_pos <= q_pos) & ((k_pos > q_pos - window) if window else True)
    expected = F.scaled_dot_product_attention(
        q.transpose(0, 1),
        k_cache[:length].transpose(0, 1).repeat_interleave(4, 0),
        v_cache[:length].transpose(0, 1).repeat_interleave(4, 0),
        attn_mask=mask,
        scale=0.3,
    ).transpose(0, 1)
    torch.testing.assert_close(out, expected)


def test_reference_kv_write() -> None:
    k_cache, v_cache = torch.zeros(6, 2, 4), torch.zeros(6, 2, 4)
    k, v = torch.randn(2, 2, 4), torch.randn(2, 2, 4)
    ref.kv_cache_write(k_cache, v_cache, k, v, torch.tensor([4, 1]))
    assert torch.equal(k_cache[4], k[0]) and torch.equal(v_cache[1], v[1])
    assert k_cache[[0, 2, 3, 5]].abs().sum() == 0


# --- Triton kernels against the references ------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_triton_add_rmsnorm(use_triton: None, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    x, residual, weight = _rand(2, 3, 48, dtype=dtype), _rand(2, 3, 48, dtype=dtype), _rand(48)
    normed, hidden = kernels.add_rmsnorm(x, residual, weight, 1e-5)
    exp_normed, exp_hidden = ref.add_rmsnorm(x, residual, weight, 1e-5)
    assert normed.dtype == dtype and normed.shape == x.shape
    assert torch.equal(hidden, exp_hidden)
    torch.testing.assert_close(normed, exp_normed, **_tol(dtype))
    normed, hidden = kernels.add_rmsnorm(x, None, weight, 1e-5)
    assert hidden is x
    torch.testing.assert_close(normed, ref.rmsnorm(x, weight, 1e-5), **_tol(dtype))
    torch.testing.assert_close(kernels.rmsnorm(x, weight, 1e-5), normed)


@pytest.mark.parametrize("dtype", DTYPES)
def test_triton_rotary_on_strided_views(use_triton: None, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    n_tok, n_q, n_kv, dim = 3, 4, 2, 16
    qkv = _rand(n_tok, (n_q + 2 * n_kv) * dim, dtype=dtype)  # a fused projection's output
    q = qkv[:, : n_q * dim].view(n_tok, n_q, dim)
    k = qkv[:, n_q * dim : (n_q + n_kv) * dim].view(n_tok, n_kv, dim)
    angles = (
        torch.arange(n_tok, device=DEVICE)[:, None]
        * 0.37
        * torch.arange(1, dim // 2 + 1, device=DEVICE)
    )
    emb = torch.cat([angles, angles], -1).float()
    q_out, k_out = kernels.apply_rotary(q, k, emb.cos(), emb.sin())
    q_exp, k_exp = ref.apply_rotary(q, k, emb.cos(), emb.sin())
    torch.testing.assert_close(q_out, q_exp, **_tol(dtype))
    torch.testing.assert_close(k_out, k_exp, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_triton_kv_cache_write_into_layer_view(use_triton: None, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    caches = torch.zeros(2, 2, 9, 3, 8, dtype=dtype, device=DEVICE)  # [k|v, layer, len, Hkv, D]
    k, v = _rand(3, 3, 8, dtype=dtype), _rand(3, 3, 8, dtype=dtype)
    positions = torch.tensor([5, 0, 8], device=DEVICE)
    kernels.kv_cache_write(caches[0, 1], caches[1, 1], k, v, positions)
    expected = torch.zeros_like(caches)
    ref.kv_cache_write(expected[0, 1], expected[1, 1], k, v, positions)
    assert torch.equal(caches, expected)
    # Out-of-range positions are dropped, never written past the cache.
    kernels.kv_cache_write(
        caches[0, 0], caches[1, 0], k, v, torch.tensor([9, -1, 2], device=DEVICE)
    )
    layer0 = torch.zeros_like(caches[:, 0])
    layer0[0, 2], layer0[1, 2] = k[2], v[2]
    assert torch.equal(caches[:, 0], layer0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_triton_kv_write_and_attention_on_the_engines_cache_layout(
    use_triton: None, dtype: torch.dtype
) -> None:
    """The engine's KVCache is [L, Hkv, max_len, D]; kernels get `[layer].transpose(0, 1)`."""
    torch.manual_seed(0)
    n_kv, n_heads, dim, max_len = 2, 4, 16, 70
    cache = torch.zeros(2, 3, n_kv, max_len, dim, dtype=dtype, device=DEVICE)  # [k|v, L, ...]
    expected = cache.clone()
    k, v = _rand(3, n_kv, dim, dtype=dtype), _rand(3, n_kv, dim, dtype=dtype)
    positions = torch.tensor([66, 67, 68], device=DEVICE)
    k_view, v_view = cache[0, 1].transpose(0, 1), cache[1, 1].transpose(0, 1)
    kernels.kv_cache_write(k_view, v_view, k, v, positions)
    ref.kv_cache_write(
        expected[0, 1].transpose(0, 1), expected[1, 1].transpose(0, 1), k, v, positions
    )
    assert torch.equal(cache, expected)
    assert torch.equal(cache[0, 1, :, 67], k[1])  # landed at [layer, head, position]
    cache[:, 1, :, :66] = _rand(2, n_kv, 66, dim, dtype=dtype)
    q = _rand(3, n_heads, dim, dtype=dtype)
    want = ref.decode_attention(q, k_view.contiguous(), v_view.contiguous(), 69, dim**-0.5, 20)
    length = torch.tensor([69], device=DEVICE)
    got = kernels.decode_attention(q, k_view, v_view, length, dim**-0.5, 20)
    torch.testing.assert_close(got, want, **_tol(dtype))
    torch.testing.assert_close(
        ref.decode_attention(q, k_view, v_view, 69, dim**-0.5, 20), want, **_tol(dtype)
    )


ATTENTION_CASES = [
    # n_queries, n_heads, n_kv, head_dim, length, window, num_splits
    (1, 4, 4, 16, 1, None, 1),
    (1, 8, 2, 16, 150, None, 3),  # GQA, three splits (the last one ragged)
    (1, 8, 2, 24, 97, 40, 4),  # head_dim not a power of two; window; an empty split
    (4, 4, 1, 16, 130, None, 2),  # speculative verify: 4 tokens, causal among themselves
    (3, 4, 2, 16, 150, 5, 1),  # window narrower than the query block
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ATTENTION_CASES)
def test_triton_decode_attention(use_triton: None, dtype: torch.dtype, case: tuple) -> None:
    from engine.kernels import triton_attention

    n_q, n_heads, n_kv, dim, length, window, splits = case
    torch.manual_seed(0)
    q = _rand(n_q, n_heads, dim, dtype=dtype)
    k_cache, v_cache = _rand(150, n_kv, dim, dtype=dtype), _rand(150, n_kv, dim, dtype=dtype)
    expected = ref.decode_attention(q, k_cache, v_cache, length, dim**-0.5, window)
    length_t = torch.tensor([length], device=DEVICE, dtype=torch.int32)
    for ln in (length, length_t):
        out = triton_attention.decode_attention(
            q, k_cache, v_cache, ln, dim**-0.5, window, num_splits=splits
        )
        assert out.dtype == dtype
        torch.testing.assert_close(out, expected, **_tol(dtype))
    out = kernels.decode_attention(q, k_cache, v_cache, length_t, dim**-0.5, window)
    torch.testing.assert_close(out, expected, **_tol(dtype))
