"""Sampling: greedy, temperature, top-k, top-p and seeding through the one shared function."""

from __future__ import annotations

import pytest
import torch

from engine.sampling import SamplingParams, probs, sample

LOGITS = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0], [0.0, 3.0, 0.1, 0.2, 0.3]])


def test_greedy_is_argmax_and_one_hot():
    params = SamplingParams(temperature=0)
    assert sample(LOGITS, params).tolist() == [0, 1]
    assert probs(LOGITS, params).tolist()[0] == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_temperature_one_is_softmax():
    torch.testing.assert_close(probs(LOGITS, SamplingParams(temperature=1.0)), LOGITS.softmax(-1))


def test_top_k_keeps_k_tokens():
    p = probs(LOGITS, SamplingParams(temperature=1.0, top_k=2))
    assert (p > 0).sum(-1).tolist() == [2, 2]
    torch.testing.assert_close(p.sum(-1), torch.ones(2))


def test_top_p_keeps_the_smallest_nucleus():
    soft = LOGITS[0].softmax(-1)  # ~[0.61, 0.22, 0.14, 0.08, 0.03]
    p = probs(LOGITS[0], SamplingParams(temperature=1.0, top_p=0.7))
    assert (p > 0).tolist() == [True, True, False, False, False]
    torch.testing.assert_close(p[:2], soft[:2] / soft[:2].sum())
    assert (probs(LOGITS[0], SamplingParams(temperature=1.0, top_p=0.1)) > 0).sum() == 1


def test_seeded_sampling_is_deterministic_and_follows_the_distribution():
    params = SamplingParams(temperature=1.0, top_k=3)
    draw = [sample(LOGITS[0], params, torch.Generator().manual_seed(5)).item() for _ in range(3)]
    assert len(set(draw)) == 1
    gen = torch.Generator().manual_seed(0)
    counts = torch.bincount(sample(LOGITS[0].expand(4000, 5), params, gen), minlength=5).float()
    torch.testing.assert_close(counts / 4000, probs(LOGITS[0], params), atol=0.03, rtol=0)


@pytest.mark.parametrize(
    "bad", [dict(temperature=-1), dict(top_p=0), dict(top_p=1.5), dict(top_k=-2)]
)
def test_invalid_parameters_are_rejected(bad):
    with pytest.raises(ValueError):
        SamplingParams(**bad)
