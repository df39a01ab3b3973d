"""EAGLE training losses: batches of windows, the feature regression and soft cross-entropy
terms over `depth` draft steps, and the training-time test (`DraftChain`): the keys a draft
step sees d-1 steps into a chain, for every position of a [B, T] window at once. The engine's
head accepts any chain of this shape (`engine.eagle.ChainAttention`) in `EagleHead.run`."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from engine.eagle import EAGLE1, EagleHead


class DraftChain:
    """Training-time test: the keys a draft step sees d-1 steps into a chain, for every position
    of a [B, T] window at once. Pass d reads pass d-1's states shifted by one position; the
    draft cache then holds pass-1 rows (from the target's features) up to p-d+1 and one row
    from each later pass on the diagonal, p-d+2 .. p. One chain per window, passes in order."""

    def __init__(self, n_layers: int, T: int, device: torch.device) -> None:
        self.kv: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in range(n_layers)]
        self.idx = torch.arange(T, device=device)
        self.depth = 0
        self.mask: torch.Tensor | None = None  # pass 1: plain causal

    def next_pass(self) -> None:
        self.depth += 1
        if self.depth > 1:
            d, q, c = self.depth, self.idx[:, None], self.idx[None, :]
            blocks = [c <= q - (d - 1)] + [c == q - (d - j) for j in range(2, d + 1)]
            self.mask = torch.cat(blocks, dim=1)  # [T, d*T]

    def attend(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This pass's keys/values [B, Hkv, T, D] after the earlier passes' ones (a later pass
        may run on the first B windows of the earlier ones only)."""
        self.kv[layer].append((k, v))
        B = k.shape[0]
        return (
            torch.cat([k_[:B] for k_, _ in self.kv[layer]], dim=-2),
            torch.cat([v_[:B] for _, v_ in self.kv[layer]], dim=-2),
        )


def batch(data, B: int, T: int, rng: random.Random, dev: torch.device, dim: int):
    """B windows of up to T pairs: tokens p+1, input features p, next features p+1 (all
    stored), positions p, and a mask [B, T] of the pairs that count: inside the sequence
    (windows of short ones are zero-padded) and predicting answer tokens (p + 2 >= the answer
    start). Stored features are [final (dim), captured layers...]: the head's input is the
    captured layers when there are any (EAGLE-3), else the final one (EAGLE-1)."""
    toks, feats, nxt, pos, mask = [], [], [], [], []
    for _ in range(B):
        t, h, start = data[rng.randrange(len(data))]
        n = min(T, len(t) - 1)
        s = rng.randrange(0, len(t) - n)
        pad = T - n
        inp = h[s : s + n, dim:] if h.shape[-1] > dim else h[s : s + n]
        toks.append(F.pad(t[s + 1 : s + n + 1], (0, pad)))
        feats.append(F.pad(inp.float(), (0, 0, 0, pad)))
        nxt.append(F.pad(h[s + 1 : s + n + 1].float(), (0, 0, 0, pad)))
        pos.append(torch.arange(s, s + T).clamp(max=s + n - 1))
        mask.append((torch.arange(T) < n) & (torch.arange(s, s + T) + 2 >= start))
    return tuple(torch.stack(x).to(dev) for x in (toks, feats, nxt, pos, mask))


def _terms(head, state, nxt, valid, lm_head, ce_positions, gen):
    dim = state.shape[-1]
    flat_s = state.reshape(-1, dim)[valid]
    flat_n = nxt.reshape(-1, nxt.shape[-1])[valid][:, :dim]  # the target's final feature at p+1
    # EAGLE-3's state is its own (no target feature to regress to): cross-entropy alone. An
    # "anchor" pulling it toward the next position's fused feature was tried: no better.
    reg = F.smooth_l1_loss(flat_s, flat_n) if head.kind == EAGLE1 else flat_s.new_zeros(())
    idx = torch.randperm(flat_s.shape[0], generator=gen)[:ce_positions].to(flat_s.device)
    with torch.no_grad():
        p = F.softmax(F.linear(flat_n[idx], lm_head), dim=-1)
    # EAGLE-1 drafts through the target's (sliced) LM head; EAGLE-3 through its own norm and head.
    logits = (
        F.linear(flat_s[idx], lm_head) if head.kind == EAGLE1 else head.vocab_logits(flat_s[idx])
    )
    logq = F.log_softmax(logits, dim=-1)
    ce = -(p * logq).sum(-1).mean()
    # Top-1 agreement on demand: two argmaxes over the draft vocabulary cost 5% of a step.
    return reg, ce, lambda: float((logq.argmax(-1) == p.argmax(-1)).float().mean())


def losses(
    head: EagleHead,
    lm_head: torch.Tensor,
    b,
    ce_positions: int,
    noise: float,
    gen,
    depth: int,
    exact: bool = False,
    deep_batch: int | None = None,
):
    """(smooth-L1 on features, soft cross-entropy, top-1 agreement when called) over the valid
    pairs, averaged over `depth` draft steps.

    Step 1 reads the target's (noised) features. Step d reads step d-1's states, shifted one
    position: the head learns to go on from its own guesses, as drafting steps 2..K do. With
    `exact`, step d attends as the draft cache lets it d-1 steps into a chain (training-time
    test); without, to step d's own states at every earlier position too: harsher than
    drafting and cheaper (plain causal attention), and better on the benchmark at depth 2.
    Steps 3+ run on the first `deep_batch` windows only (all by default): they cost a pass each.
    """
    toks, feats, nxt, pos, mask = b
    if noise:
        scale = noise * feats.pow(2).mean().sqrt()
        feats = feats + scale * (2 * torch.rand(feats.shape, generator=gen) - 1).to(feats.device)
    T = toks.shape[1]
    chain = DraftChain(len(head.layers), T, toks.device) if depth > 1 and exact else None
    hidden, terms = feats, []
    for d in range(1, depth + 1):
        if d == 3 and deep_batch is not None:
            toks, pos, nxt, mask, feats, hidden = (
                x[:deep_batch] for x in (toks, pos, nxt, mask, feats, hidden)
            )
        if chain is not None:
            chain.next_pass()
        state = head.run(toks, hidden, pos, None, from_target=d == 1, chain=chain)  # [B, T, H]
        # A step-d guess at p follows a chain begun at p-d+1: none for the first d-1 positions.
        ok = mask & (torch.arange(T, device=mask.device) >= d - 1)
        valid = ok.reshape(-1).nonzero().squeeze(-1)
        # Later steps sample half as many cross-entropy positions (fewer still on fewer
        # windows): they cost a pass each.
        n_ce = ce_positions * toks.shape[0] // (min(d, 2) * b[0].shape[0])
        terms.append(_terms(head, state, nxt, valid, lm_head, n_ce, gen))
        # Position 0 starts no chain; it keeps the target's feature (fused, for EAGLE-3).
        first = feats[:, :1] if head.kind == EAGLE1 else F.linear(feats[:, :1], head.fc)
        hidden = torch.cat((first, state[:, :-1]), dim=1)
    reg = sum(t[0] for t in terms) / depth
    ce = sum(t[1] for t in terms) / depth
    return reg, ce, terms[0][2]


def held_accuracy(head: EagleHead, lm_head: torch.Tensor, held_b) -> float:
    with torch.no_grad():
        return float(
            losses(head, lm_head, held_b, 4096, 0.0, torch.Generator().manual_seed(0), 1)[2]()
        )
