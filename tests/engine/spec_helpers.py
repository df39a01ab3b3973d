"""Helpers for the speculative-decoding tests: targets, reference decoding and test drafters."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from engine.checkpoint import resolve
from engine.decoder import Decoder, common_prefix
from engine.engine import load_model
from engine.events import Timings
from engine.model import ForwardOutput, Transformer
from engine.sampling import SamplingParams, probs
from engine.spec import Drafter, Speculator, pick
from tests.fakes import tiny_models

GREEDY = SamplingParams()


def load_target(path: Path) -> Transformer:
    return load_model(resolve(path), "cpu", torch.float32, max_context=256)


def deep_mistral(path: Path, n_layers: int = 8, seed: int = 5) -> Path:
    """A tiny peaky Mistral with enough layers for EAGLE-3's (2, L/2, L-3) taps."""
    from transformers import MistralConfig, MistralForCausalLM

    cfg = MistralConfig(**{**tiny_models.DIMS, "num_hidden_layers": n_layers}, rope_theta=1e4)
    model = MistralForCausalLM(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.1 if name.endswith("norm.weight") else p.shape[-1] ** -0.5
            p.copy_(
                (1.0 if name.endswith("norm.weight") else 0.0)
                + torch.randn(p.shape, generator=gen) * scale
            )
        model.lm_head.weight.mul_(4.0)
    return tiny_models.save_hf(model.eval(), path)


def plain_greedy(model: Transformer, prompt: list[int], n: int) -> list[int]:
    """Non-speculative greedy decoding: one target forward per token."""
    cache = model.new_cache()
    logits = model.forward(torch.tensor(prompt), torch.arange(len(prompt)), cache).logits
    out = []
    for i in range(n):
        tok = int(logits[-1].argmax())
        out.append(tok)
        if i + 1 < n:
            pos = torch.tensor([cache.length])
            logits = model.forward(torch.tensor([tok]), pos, cache).logits
    return out


def run_spec(
    model: Transformer,
    drafter: Drafter,
    k: int,
    prompt: list[int],
    n: int,
    params: SamplingParams = GREEDY,
    seed: int = 0,
    decoder: Speculator | None = None,
    state: Decoder | None = None,
) -> tuple[list[int], Speculator, Decoder]:
    """Speculative generation of n tokens; returns (tokens, speculator, target decoder): pass
    them back in to continue with both caches."""
    spec = decoder or Speculator(drafter, k)
    target = state or Decoder(model)
    gen = torch.Generator().manual_seed(seed)
    toks = list(target.speculate(spec, prompt, params, n, gen, frozenset(), Timings()))
    return toks, spec, target


class TargetDrafter:
    """Drafts with the target itself (own KV cache): perfect, or wrong at chosen positions
    (`wrong_at`: draft indices replaced by another token; range(K) makes it always wrong)."""

    capture_layers: tuple[int, ...] = ()
    last_copied: list[bool] = []  # never copies

    def __init__(self, model: Transformer, wrong_at: Sequence[int] = ()) -> None:
        self.model, self.wrong_at = model, set(wrong_at)
        self.cache = model.new_cache()
        self.ids: list[int] = []

    def features(self, out: ForwardOutput) -> torch.Tensor:
        return out.hidden

    def propose(self, ids, feats, start, k, params, generator):
        keep = min(common_prefix(self.ids, ids), len(ids) - 1)
        self.cache.truncate(keep)
        run = list(ids[keep:])
        logits = self.model.forward(
            torch.tensor(run), torch.arange(keep, len(ids)), self.cache
        ).logits
        self.ids = list(ids)
        tokens, dists = [], []
        for j in range(k):
            tok, q = pick(logits[-1], params, generator)
            if j in self.wrong_at:
                tok = (logits[-1].argmax().view(1) + 1) % logits.shape[-1]
                q = (
                    None
                    if params.greedy
                    else torch.nn.functional.one_hot(tok[0], logits.shape[-1]).float()
                )
            tokens.append(tok)
            dists.append(q)
            if j + 1 < k:
                pos = torch.tensor([len(self.ids)])
                logits = self.model.forward(tok, pos, self.cache).logits
                self.ids.append(int(tok))
        return torch.cat(tokens), (None if params.greedy else torch.stack(dists))


def sampled_probs(model: Transformer, ids: list[int], params: SamplingParams) -> torch.Tensor:
    """The processed next-token distribution of the target after `ids`."""
    cache = model.new_cache()
    logits = model.forward(torch.tensor(ids), torch.arange(len(ids)), cache).logits
    return probs(logits[-1], params)
