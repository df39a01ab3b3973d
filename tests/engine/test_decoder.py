"""The decode core (engine/decoder.py) and the shared decoder layer (engine/layer.py): the
token ids track the cache, prefix reuse, plain decoding equals the model's own greedy steps,
and the short-step ops (RoPE as a matmul, one-query attention, the C add+RMSNorm) equal the
torch formulations they replace."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.decoder import PREFILL_CHUNK, Decoder, common_prefix
from engine.events import Timings
from engine.kernels import cpu_linear
from engine.layer import StepOps, cache_ops, rope_matrices
from engine.rope import apply_rope
from engine.sampling import SamplingParams
from tests.engine.spec_helpers import load_target, plain_greedy


@pytest.fixture(scope="module")
def target(tiny_dir):
    return load_target(tiny_dir("mistral")[1])


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0 and common_prefix([1, 2], [1, 2]) == 2


def test_ids_follow_the_cache_through_prefill_step_and_truncate(target, prompt_ids) -> None:
    dec = Decoder(target)
    prompt = prompt_ids(10, seed=1)
    out, reused = dec.prefill(prompt)
    assert reused == 0 and dec.ids == prompt and dec.cache.length == 10
    dec.step(int(out.logits[-1].argmax()))
    assert len(dec.ids) == dec.cache.length == 11
    _, reused = dec.prefill([*prompt[:6], 3, 4])  # shares 6 tokens with what is cached
    assert reused == 6 and dec.cache.length == 8 and dec.ids == [*prompt[:6], 3, 4]
    _, reused = dec.prefill(dec.ids)  # all cached: the last token runs again for its logits
    assert reused == 7 and dec.cache.length == 8
    dec.reset()
    assert dec.ids == [] and dec.cache.length == 0
    with pytest.raises(ValueError, match="empty"):
        dec.prefill([])


def test_plain_generate_is_greedy_decoding_and_fills_timings(target, prompt_ids) -> None:
    prompt = prompt_ids(12, seed=2)
    timings = Timings(prompt_tokens=12)
    dec = Decoder(target)
    got = list(dec.generate(prompt, SamplingParams(), 9, None, frozenset(), timings))
    assert got == plain_greedy(target, prompt, 9)
    assert timings.decode_tokens == 9 and timings.prefill_s > 0
    assert dec.ids == prompt + got[:-1]  # the last token is sampled, not yet run
    stop = frozenset({got[3]})
    again = list(dec.generate(prompt, SamplingParams(), 9, None, stop, Timings()))
    assert again == got[: got.index(got[3]) + 1]


def test_long_prompts_prefill_in_chunks(target) -> None:
    assert target.max_len < PREFILL_CHUNK  # the tiny model's context is one chunk
    dec = Decoder(target)
    seen = []
    dec.prefill(list(range(3, 40)), each=lambda out: seen.append(out.hidden.shape[0]))
    assert seen == [37]


def test_rope_matrices_rotate_like_rotate_half() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 16, generator=gen)
    cos, sin = torch.randn(3, 16, generator=gen), torch.randn(3, 16, generator=gen)
    want = apply_rope(x, cos[:, None], sin[:, None])
    got = torch.bmm(x, rope_matrices(cos, sin, 16))
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


def test_one_query_attention_equals_sdpa(target) -> None:
    """The decode path's grouped bmm attention against the SDPA path on the same cache."""
    cache = target.new_cache()
    gen = torch.Generator().manual_seed(3)
    H, Hkv, D = target.local.n_heads, target.local.n_kv_heads, target.cfg.head_dim
    cache.k.copy_(torch.randn(cache.k.shape, generator=gen))
    cache.v.copy_(torch.randn(cache.v.shape, generator=gen))
    cache.length = 20
    pos = torch.tensor([20])
    ops = cache_ops((H, Hkv, D), 1e-5, target.cos, target.sin, pos, cache, 21)
    q, k, v = (torch.randn(1, n, D, generator=gen) for n in (H, Hkv, Hkv))
    got = ops.attend(0, q, k, v)
    keys, values = cache.view(0, 0, 21)
    want = F.scaled_dot_product_attention(
        q.transpose(0, 1)[None], keys[None], values[None], enable_gqa=True
    )[0].transpose(0, 1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rows", [1, 3])
def test_c_add_rmsnorm_equals_torch(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    if not cpu_linear.enabled():
        pytest.skip("no C compiler here")
    gen = torch.Generator().manual_seed(rows)
    delta, resid = torch.randn(rows, 96, generator=gen), torch.randn(rows, 96, generator=gen)
    w = torch.randn(96, generator=gen)
    ops = StepOps((1, 1, 1), 1e-5, torch.ones(1), torch.zeros(1))
    for r in (None, resid):
        out, total = cpu_linear.add_rmsnorm(delta, r, w, 1e-5)
        want_total = delta if r is None else r + delta
        torch.testing.assert_close(total, want_total)
        torch.testing.assert_close(out, F.rms_norm(want_total, (96,), w, 1e-5))
        torch.testing.assert_close(ops.add_norm(delta, r, w)[0], out)
    monkeypatch.setenv(cpu_linear.ENV_VAR, "0")
    assert cpu_linear.add_rmsnorm(delta, resid, w, 1e-5) is None
