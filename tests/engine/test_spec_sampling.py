"""Speculative sampling keeps the target's distribution: a vectorised chi-square test of the
rejection sampler (and of wrong acceptance rules, which it must reject), plus the accept/reject
entry point and the sampled decoding path on a tiny model."""

from __future__ import annotations

import pytest
import torch

from engine.sampling import SamplingParams
from engine.spec import accept_tokens, rejection_sample
from tests.engine.spec_helpers import TargetDrafter, load_target, plain_greedy, run_spec

N = 200_000
P = torch.tensor(
    [
        [0.30, 0.25, 0.20, 0.15, 0.07, 0.03],
        [0.05, 0.05, 0.10, 0.20, 0.25, 0.35],
        [0.10, 0.30, 0.10, 0.30, 0.10, 0.10],
    ]
)  # target p at draft positions 1, 2 and the bonus position
Q = torch.tensor(
    [
        [0.05, 0.10, 0.15, 0.20, 0.25, 0.25],
        [0.40, 0.20, 0.10, 0.10, 0.10, 0.10],
    ]
)  # draft q at positions 1, 2


def chi2_pvalue(samples: torch.Tensor, expected: torch.Tensor) -> float:
    counts = torch.bincount(samples, minlength=expected.numel()).double()
    exp = expected.double() * samples.numel()
    stat = ((counts - exp) ** 2 / exp).sum()
    df = torch.tensor(expected.numel() - 1, dtype=torch.float64)
    return float(torch.special.gammaincc(df / 2, stat / 2))


# A prompt-lookup draft: a fixed token with all the draft mass on it (`EagleDrafter._one_hot`).
Q_COPY = torch.nn.functional.one_hot(torch.tensor([2, 5]), 6).float()


def emitted_tokens(
    rule, seed: int, q: torch.Tensor = Q
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run `rule` on N chains of 2 drafts sampled from q; return the 1st emitted token of every
    chain, the 2nd token of chains that accepted draft 1, and the bonus of fully accepted ones."""
    gen = torch.Generator().manual_seed(seed)
    drafts = torch.stack(
        [torch.multinomial(q[i], N, replacement=True, generator=gen) for i in range(2)], 1
    )
    n, nxt = rule(drafts, q.expand(N, 2, 6), P.expand(N, 3, 6), gen)
    first = torch.where(n >= 1, drafts[:, 0], nxt)
    second = torch.where(n >= 2, drafts[:, 1], nxt)[n >= 1]
    bonus = nxt[n == 2]
    return first, second, bonus


def always_accept(drafts, q, p, gen):
    n = torch.full((drafts.shape[0],), drafts.shape[1])
    return n, torch.multinomial(p[:, -1], 1, generator=gen)[:, 0]


def resample_from_target(drafts, q, p, gen):
    """Accept with min(1, p/q) but resample from p instead of the residual max(0, p - q)."""
    pd = p[:, :2].gather(-1, drafts[..., None])[..., 0]
    qd = q.gather(-1, drafts[..., None])[..., 0]
    u = torch.rand(pd.shape, generator=gen)
    n = (u < pd / qd).long().cumprod(-1).sum(-1)
    rows = torch.arange(drafts.shape[0])
    return n, torch.multinomial(p[rows, n], 1, generator=gen)[:, 0]


def accept_by_target_prob(drafts, q, p, gen):
    """Accept with probability p(d) (ignoring q), residual correction as usual."""
    pd = p[:, :2].gather(-1, drafts[..., None])[..., 0]
    u = torch.rand(pd.shape, generator=gen)
    n = (u < pd).long().cumprod(-1).sum(-1)
    rows = torch.arange(drafts.shape[0])
    qn = q[rows, n.clamp(max=1)] * (n < 2)[:, None]
    r = (p[rows, n] - qn).clamp(min=0)
    return n, torch.multinomial(r / r.sum(-1, keepdim=True), 1, generator=gen)[:, 0]


def pvalues(rule, seed=0, q=Q) -> list[float]:
    first, second, bonus = emitted_tokens(rule, seed, q)
    return [chi2_pvalue(first, P[0]), chi2_pvalue(second, P[1]), chi2_pvalue(bonus, P[2])]


def test_rejection_sampling_preserves_the_target_distribution():
    assert min(pvalues(rejection_sample)) > 1e-3


@pytest.mark.parametrize("rule", [always_accept, resample_from_target, accept_by_target_prob])
def test_the_same_test_rejects_wrong_acceptance_rules(rule):
    assert min(pvalues(rule)) < 1e-3


def test_looked_up_drafts_with_one_hot_distributions_keep_the_target_distribution():
    assert min(pvalues(rejection_sample, q=Q_COPY)) > 1e-3
    # Same power check: accepting a copied token outright, or resampling from p, is caught.
    assert min(pvalues(always_accept, q=Q_COPY)) < 1e-3
    assert min(pvalues(resample_from_target, q=Q_COPY)) < 1e-3


def test_rejection_sampling_with_equal_distributions_accepts_everything():
    gen = torch.Generator().manual_seed(0)
    drafts = torch.multinomial(P[0], 1000, replacement=True, generator=gen).view(500, 2)
    n, _ = rejection_sample(drafts, P[:1].expand(500, 2, 6), P[:1].expand(500, 3, 6), gen)
    assert (n == 2).all()


def test_greedy_accepts_the_argmax_prefix_then_corrects():
    logits = torch.tensor([[0.0, 5, 1], [3, 0, 1], [0, 0, 9], [7, 0, 0]])  # argmax 1, 0, 2, 0
    greedy = SamplingParams()
    assert accept_tokens(torch.tensor([1, 0, 1]), None, logits, greedy).tolist() == [1, 0, 2]
    assert accept_tokens(torch.tensor([1, 0, 2]), None, logits, greedy).tolist() == [1, 0, 2, 0]
    assert accept_tokens(torch.tensor([2, 0, 2]), None, logits, greedy).tolist() == [1]
    assert accept_tokens(torch.tensor([], dtype=torch.long), None, logits[:1], greedy).tolist() == [
        1
    ]


def test_forced_acceptance_rate_drives_the_accepted_length():
    logits = torch.zeros(5, 10)
    drafts = torch.tensor([3, 3, 3, 3])
    params = SamplingParams()
    gen = torch.Generator().manual_seed(0)
    assert len(accept_tokens(drafts, None, logits, params, gen, forced_alpha=1.0)) == 5
    assert len(accept_tokens(drafts, None, logits, params, gen, forced_alpha=0.0)) == 1
    lengths = torch.tensor(
        [
            len(accept_tokens(drafts, None, logits, params, gen, forced_alpha=0.6))
            for _ in range(3000)
        ]
    )
    expected = sum(0.6**i for i in range(5))  # E[accepted + 1] = 1 + a + a^2 + a^3 + a^4
    assert abs(lengths.float().mean().item() - expected) < 0.08


@pytest.fixture(scope="module")
def target(tiny_dir):
    return load_target(tiny_dir("mistral")[1])


def test_sampled_decoding_uses_the_processed_distribution(target, prompt_ids):
    """top_k=1 at temperature 1 is deterministic: verification must apply it like the drafter."""
    prompt = prompt_ids(10, seed=4)
    params = SamplingParams(temperature=1.0, top_k=1)
    got, dec, _ = run_spec(
        target, TargetDrafter(target, wrong_at=[1]), 3, prompt, 16, params, seed=3
    )
    assert got == plain_greedy(target, prompt, 16)
    assert dec.stats.accepted_at[0] == dec.stats.drafted_at[0]


def test_perfect_drafter_is_always_accepted_when_sampling(target, prompt_ids):
    params = SamplingParams(temperature=0.8, top_p=0.9)
    prompt = prompt_ids(10, seed=5)
    a, dec, _ = run_spec(target, TargetDrafter(target), 4, prompt, 20, params, seed=11)
    b, _, _ = run_spec(target, TargetDrafter(target), 4, prompt, 20, params, seed=11)
    assert a == b  # seeded
    assert dec.stats.accepted / dec.stats.drafted > 0.95
