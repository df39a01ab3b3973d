"""Speculative decoding: a drafter proposes K tokens, the target verifies them in one forward pass,
the longest valid prefix plus one correction/bonus token is kept and both KV caches roll back.

`accept_tokens` is the single accept/reject decision (rank 0 under tensor parallelism): greedy
keeps drafts equal to the target's argmax; sampling uses rejection sampling (Leviathan et al.
2023, Chen et al. 2023) on `sampling.probs`, the same processed distribution as plain sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from engine.eagle import DraftOutput, EagleHead
from engine.lookup import DEFAULT_NGRAM, NgramLookup
from engine.model import ForwardOutput
from engine.sampling import SamplingParams, probs, sample


def rejection_sample(
    draft_tokens: torch.Tensor,
    draft_probs: torch.Tensor,
    target_probs: torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Vectorised chain verification over B independent rows.

    draft_tokens [B, K], draft_probs q [B, K, V], target_probs p [B, K+1, V] (K >= 1).
    Draft i is accepted with probability min(1, p(d)/q(d)) while all before it were; the next
    token comes from normalise(max(0, p - q)) at the first rejection, or from p[K] when all K
    were accepted. Returns (number accepted [B], next token [B]); the emitted tokens are
    draft_tokens[:n] followed by next, distributed exactly as sampling p step by step.
    """
    B, K = draft_tokens.shape
    p_d = target_probs[:, :K].gather(-1, draft_tokens[..., None])[..., 0]
    q_d = draft_probs.gather(-1, draft_tokens[..., None])[..., 0]
    u = torch.rand((B, K), generator=generator, device=draft_tokens.device)
    ok = u * q_d < p_d  # u < p/q without dividing by a zero q
    n = ok.long().cumprod(-1).sum(-1)  # [B]
    rows = torch.arange(B, device=n.device)
    p_n = target_probs[rows, n]
    q_n = draft_probs[rows, n.clamp(max=K - 1)] * (n < K)[:, None]
    residual = (p_n - q_n).clamp(min=0)
    mass = residual.sum(-1, keepdim=True)
    # p == q leaves no residual mass; any rejection is then impossible, so p is only a guard.
    dist = torch.where(mass > 0, residual / mass.clamp(min=1e-30), p_n)
    nxt = torch.multinomial(dist, 1, generator=generator)[:, 0]
    return n, nxt


def accept_tokens(
    draft_tokens: torch.Tensor,
    draft_probs: torch.Tensor | None,
    target_logits: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator | None = None,
    forced_alpha: float | None = None,
) -> torch.Tensor:
    """The tokens to emit [n + 1]: n accepted drafts then a correction or bonus token.

    draft_tokens [K], draft_probs [K, V] (None when greedy), target_logits [K+1, V]. With
    `forced_alpha`, each draft is accepted with that probability regardless of the models
    (benchmarking the mechanics only: the output is then not the target's distribution).
    """
    K = draft_tokens.shape[0]
    dev = target_logits.device
    if forced_alpha is not None:
        ok = torch.rand(K, generator=generator, device=dev) < forced_alpha
        n = int(ok.long().cumprod(-1).sum())
        nxt = sample(target_logits[n], params, generator).view(1)
        return torch.cat((draft_tokens[:n], nxt))
    if params.greedy:
        best = target_logits.argmax(-1)  # [K+1]
        n = int((draft_tokens == best[:K]).long().cumprod(-1).sum())
        return torch.cat((draft_tokens[:n], best[n : n + 1]))
    if K == 0:
        return sample(target_logits[0], params, generator).view(1)
    if draft_probs is None:
        raise ValueError("sampled verification needs the draft probabilities")
    p = probs(target_logits, params)
    n_t, nxt = rejection_sample(draft_tokens[None], draft_probs[None], p[None], generator)
    n = int(n_t[0])
    return torch.cat((draft_tokens[:n], nxt))


class Drafter(Protocol):
    """Proposes draft tokens; owns its KV cache. Features come from the target's forward."""

    capture_layers: tuple[int, ...]
    last_copied: list[bool]  # per draft of the last proposal: copied from the text (lookup)

    def features(self, out: ForwardOutput) -> torch.Tensor: ...

    def propose(
        self,
        ids: Sequence[int],
        feats: torch.Tensor,
        start: int,
        k: int,
        params: SamplingParams,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ids: every token so far (the last one not yet run by the target); feats [m, F]: the
        target's features of positions start .. start+m-1 = len(ids)-2. Returns k draft tokens
        [k] and, when sampling, their processed distributions [k, V]."""
        ...


def pick(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A draft token [1] and its distribution [V] (None when greedy)."""
    if params.greedy:
        return logits.argmax(-1).view(1), None
    q = probs(logits, params)
    return torch.multinomial(q, 1, generator=generator), q


class EagleDrafter:
    """Drafts a chain with an EAGLE head: catch up on the verified pairs, then K-1 own steps.

    With `lookup_ngram` (0: off), a draft step whose last n tokens appeared earlier in the text
    drafts the token that followed them there instead of the head's (`engine.lookup`), with a
    one-hot draft distribution when sampling; the head then continues from that token.
    """

    def __init__(self, head: EagleHead, lookup_ngram: int = DEFAULT_NGRAM) -> None:
        self.head = head
        self.cache = head.new_cache()
        self.capture_layers = head.capture_layers
        self.lookup = NgramLookup(lookup_ngram) if lookup_ngram else None
        self.last_copied: list[bool] = []  # per draft of the last proposal: from the lookup

    def features(self, out: ForwardOutput) -> torch.Tensor:
        return self.head.target_features(out)

    def propose(
        self,
        ids: Sequence[int],
        feats: torch.Tensor,
        start: int,
        k: int,
        params: SamplingParams,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        m = feats.shape[0]
        if m != len(ids) - 1 - start or self.cache.length < start:
            raise ValueError("drafter out of step with the target")
        self.cache.truncate(start)  # drop rows written from the head's own guesses
        dev = feats.device
        toks = torch.tensor(ids[start + 1 :], dtype=torch.long, device=dev)
        greedy = params.greedy
        out = self.head.forward(
            toks, feats, torch.arange(start, start + m, device=dev), self.cache, True, not greedy
        )
        lookup = self.lookup
        if lookup is not None:
            lookup.sync(ids)
        # The text the lookup matches (its last n tokens): the tokens so far, then the drafts.
        text = list(ids[-lookup.n :]) if lookup is not None else []
        tokens, dists, self.last_copied = [], [], []
        for j in range(k):
            copy = lookup.propose(text) if lookup is not None else None
            if copy is not None:
                tok = torch.tensor([copy], device=dev)
                q = None if greedy else self._one_hot(copy, out)
            elif greedy:  # argmax over the draft vocabulary only: no full-vocabulary logits
                tok, q = self.head.greedy_token(out.hidden), None
            else:
                assert out.logits is not None
                tok, q = pick(out.logits[-1], params, generator)
            tokens.append(tok)
            dists.append(q)
            self.last_copied.append(copy is not None)
            if lookup is not None and j + 1 < k:  # (a host sync per step on a GPU)
                text.append(copy if copy is not None else int(tok))
            if j + 1 < k:
                pos = torch.tensor([start + m + j], device=dev)
                out = self.head.forward(tok, out.hidden[-1:], pos, self.cache, False, not greedy)
        qs = None if greedy else torch.stack(dists)  # type: ignore[arg-type]
        return torch.cat(tokens), qs

    @staticmethod
    def _one_hot(token: int, out: DraftOutput) -> torch.Tensor:
        """The draft distribution of a looked-up token: all its mass on it (rejection sampling
        then accepts it with the target's probability of it, and resamples from the rest)."""
        assert out.logits is not None
        q = torch.zeros_like(out.logits[-1], dtype=torch.float32)
        q[token] = 1.0
        return q


@dataclass
class SpecStats:
    """Counters of one generation: rounds (target verifications), drafted and accepted tokens,
    and per draft position i how often it was drafted and accepted."""

    k: int
    rounds: int = 0
    emitted: int = 0
    drafted: int = 0
    accepted: int = 0
    drafted_at: list[int] = field(default_factory=list)
    accepted_at: list[int] = field(default_factory=list)
    copied: int = 0  # drafts taken from prompt lookup rather than the head
    copied_accepted: int = 0
    draft_s: float = 0.0
    verify_s: float = 0.0

    def __post_init__(self) -> None:
        self.drafted_at = [0] * self.k
        self.accepted_at = [0] * self.k

    def record(self, k: int, n: int, copied: Sequence[bool] = ()) -> None:
        self.rounds += 1
        self.emitted += n + 1
        self.drafted += k
        self.accepted += n
        for i in range(k):
            self.drafted_at[i] += 1
            self.accepted_at[i] += i < n
        for i, c in enumerate(copied[:k]):
            self.copied += c
            self.copied_accepted += c and i < n

    @property
    def mean_accepted_length(self) -> float:
        """Tokens emitted per target verification (accepted drafts + the bonus/correction)."""
        return self.emitted / self.rounds if self.rounds else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "num_speculative_tokens": self.k,
            "rounds": self.rounds,
            "mean_accepted_length": round(self.mean_accepted_length, 4),
            "acceptance_rate": round(self.accepted / self.drafted, 4) if self.drafted else 0.0,
            "per_position_acceptance": [
                round(a / d, 4) if d else 0.0
                for a, d in zip(self.accepted_at, self.drafted_at, strict=True)
            ],
            "lookup_drafts": self.copied,
            "lookup_acceptance": round(self.copied_accepted / self.copied, 4)
            if self.copied
            else 0.0,
            "draft_ms": round(self.draft_s * 1000, 3),
            "verify_ms": round(self.verify_s * 1000, 3),
        }


class Speculator:
    """How a decoder speculates (`engine.decoder.Decoder.speculate`): the drafter, K drafts per
    round, an optional forced acceptance rate (benchmarks of the mechanics), the statistics of
    the last generation, and the tokens the drafter's cache was last built from (its pairs
    stay valid across generations up to the common prefix, like the target's cache)."""

    def __init__(
        self, drafter: Drafter, num_speculative_tokens: int, forced_alpha: float | None = None
    ) -> None:
        if num_speculative_tokens < 1:
            raise ValueError(f"num_speculative_tokens must be >= 1, got {num_speculative_tokens}")
        self.drafter, self.k = drafter, num_speculative_tokens
        self.forced_alpha = forced_alpha
        self.stats = SpecStats(num_speculative_tokens)
        # A reference and a length: copying the context every round would cost O(context).
        self._draft_src: list[int] = []
        self._draft_len = 0

    @property
    def forced_alpha(self) -> float | None:
        return self._forced_alpha

    @forced_alpha.setter
    def forced_alpha(self, alpha: float | None) -> None:
        if alpha is not None and not 0 <= alpha <= 1:
            raise ValueError(f"the forced acceptance rate must be in [0, 1], got {alpha}")
        self._forced_alpha = alpha

    @property
    def draft_ids(self) -> list[int]:
        """The tokens the draft cache's pairs were built from."""
        return self._draft_src[: self._draft_len]

    def start(self) -> SpecStats:
        """Fresh statistics for a new generation."""
        self.stats = SpecStats(self.k)
        return self.stats

    def propose(
        self,
        ids: list[int],
        feats: torch.Tensor,
        start: int,
        k: int,
        params: SamplingParams,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The drafter's k drafts after `ids` (see `Drafter.propose`)."""
        drafts = self.drafter.propose(ids, feats, start, k, params, generator)
        self._draft_src, self._draft_len = ids, len(ids)
        return drafts
