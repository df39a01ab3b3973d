"""Train an EAGLE draft head (EAGLE-1 or EAGLE-3) for a target by self-distillation, on CPU or GPU.

Data (`eagle_data.py`): the target's own greedy/sampled answers to code prompts, generated in
batches by a transformers twin of the engine model (bf16 by default) that records the target's
final hidden state (and, for EAGLE-3, the inputs of its three feature layers) at every position
as it goes, plus a little Python source from disk.
Loss: EAGLE-1: smooth-L1 between the head's and the target's next feature, plus 0.1 x
cross-entropy against the target's next-token distribution through the shared LM head.
EAGLE-3: that cross-entropy alone, through the head's own LM head.

    python scripts/train_eagle.py --target smollm2 --out heads/smollm2-eagle --minutes 20
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import sysconfig
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eagle_data import DTYPES, collect_answers, corpus_data, featurize, match_prompts
from eagle_prompts import training_prompts

from engine.eagle import EAGLE1, EAGLE3, DraftChain, EagleHead, head_spec_for
from engine.eagle_io import save_head
from engine.engine import Engine
from engine.errors import EngineError
from engine.model import Transformer

Example = tuple[torch.Tensor, torch.Tensor, int]


def examples(
    seqs: list[list[int]], feats: list[torch.Tensor], starts: list[int], seq: int
) -> list[Example]:
    """(tokens [n], features [n, H], answer start) per sequence, cut into `seq`-token pieces.
    starts[i]: where sequence i's answer begins (losses count from there; 0: all)."""
    out = []
    for ids, h, start in zip(seqs, feats, starts, strict=True):
        for lo in range(0, len(ids), seq):
            chunk = ids[lo : lo + seq]
            if len(chunk) >= 16:
                out.append((torch.tensor(chunk), h[lo : lo + seq], max(0, start - lo)))
    return out


def draft_vocabulary(
    data: list[tuple[torch.Tensor, torch.Tensor]], vocab: int, size: int
) -> torch.Tensor:
    """The `size` most frequent tokens of the data (then the lowest ids), sorted ascending."""
    counts = torch.zeros(vocab)
    for toks, *_ in data:
        counts += torch.bincount(toks.cpu(), minlength=vocab).float()
    counts += torch.linspace(1e-3, 0, vocab)  # ties: prefer low ids (frequent BPE merges)
    return counts.topk(min(size, vocab)).indices.sort().values


def init_from_target(head: EagleHead, target: Transformer, seed: int) -> None:
    """Warm start: fc passes the (last) feature through, layers read like the target's last
    layer but their residual branches start at zero, so the first prediction is the current
    feature's. EAGLE-3's first layer reads the embedding half like the target's first layer,
    and its own LM head starts as the target's rows for its draft vocabulary (set d2t first)."""
    gen = torch.Generator().manual_seed(seed)
    src = target.layers[-1]
    for lay in head.layers:
        for name in ("attn_norm", "wqkv", "ffn_norm", "w13"):
            if getattr(lay, name).shape == getattr(src, name).shape:
                getattr(lay, name).copy_(getattr(src, name))
        lay.wo.zero_()
        lay.w2.zero_()
    dim = head.cfg.dim
    head.fc.copy_(torch.randn(head.fc.shape, generator=gen) * (0.02 / dim**0.5))
    head.fc[:, -dim:] += torch.eye(dim)
    head.norm.copy_(target.norm)
    if head.kind == EAGLE3:  # layer 0 reads [norm(embedding), hidden_norm(state)]
        first = head.layers[0]
        first.attn_norm.copy_(target.layers[0].attn_norm)
        first.wqkv[:, :dim].copy_(target.layers[0].wqkv)
        first.wqkv[:, dim:].copy_(src.wqkv)
        head.hidden_norm.copy_(src.attn_norm)
        head.lm_head.copy_(target.lm_head[head.draft_to_target])


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="smollm2", help="checkpoint path or alias")
    ap.add_argument("--out", required=True, help="folder to write the head into")
    ap.add_argument("--minutes", type=float, default=20.0, help="total time budget")
    ap.add_argument("--gen-minutes", type=float, default=8.0, help="of which: self-generation")
    ap.add_argument("--gen-tokens", type=int, default=192, help="max tokens per answer")
    ap.add_argument("--gen-batch", type=int, default=128, help="1: generate with the engine")
    ap.add_argument("--corpus", default=sysconfig.get_paths()["stdlib"], help="Python source dir")
    ap.add_argument("--corpus-tokens", type=int, default=3000)
    ap.add_argument("--kind", default=EAGLE1, choices=(EAGLE1, EAGLE3), help="head type")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--draft-vocab", type=int, default=8192, help="0: the full vocabulary")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--noise", type=float, default=0.1, help="uniform, relative to feature RMS")
    ap.add_argument(
        "--depth",
        type=int,
        default=2,
        help="draft steps trained per pair: 2+ also trains on the head's own guesses",
    )
    ap.add_argument(
        "--exact-chain",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="steps 2+ attend as the draft cache does (slower per step)",
    )
    ap.add_argument(
        "--deep-batch",
        type=int,
        default=None,
        help="windows per step for draft steps 3+ (default: --batch)",
    )
    ap.add_argument(
        "--train-bf16",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bfloat16 autocast for the head's matmuls (weights and optimizer stay fp32)",
    )
    ap.add_argument(
        "--ce-positions",
        type=int,
        default=1024,
        help="cross-entropy positions sampled per step (default 1024)",
    )
    ap.add_argument("--ce-weight", type=float, default=0.1, help="EAGLE's 0.1 by default")
    ap.add_argument("--prompts", type=int, default=640, help="distinct training prompts")
    ap.add_argument(
        "--data-cache", default=None, help="file: reuse the generated answers if it exists"
    )
    ap.add_argument(
        "--gen-dtype", default="bfloat16", choices=DTYPES, help="batched generation precision"
    )
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.depth < 1:
        ap.error("--depth must be at least 1")
    if args.deep_batch is not None and not 1 <= args.deep_batch <= args.batch:
        ap.error("--deep-batch must be between 1 and --batch")
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.monotonic()
    deadline = t_start + args.minutes * 60
    try:
        engine = Engine.load(args.target, device=args.device, max_context=2048)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    target = engine.model
    print(f"target {args.target}: {target.cfg.n_layers} layers, dim {target.cfg.dim}", flush=True)
    prompts = training_prompts(args.prompts, args.seed)
    n_held = max(1, len(prompts) // 20)  # whole prompts held out: generalisation, not recall
    vd = args.draft_vocab if 0 < args.draft_vocab < target.cfg.vocab_size else None
    if args.kind == EAGLE3 and not vd:
        vd = target.cfg.vocab_size  # EAGLE-3 always has its own LM head and d2t
    spec = head_spec_for(target, args.kind, n_layers=args.layers, draft_vocab_size=vd)
    seqs, feats = collect_answers(engine, prompts, args, spec.capture_layers)
    # Every answer (greedy or sampled) to the first n_held prompts is held out.
    matched = match_prompts(engine, prompts, seqs)
    is_held = [0 <= i < n_held for i, _ in matched]

    def answers(held: bool) -> list[Example]:
        chosen = [k for k, h in enumerate(is_held) if h == held]
        starts = [matched[k][1] for k in chosen]
        return examples([seqs[k] for k in chosen], [feats[k] for k in chosen], starts, args.seq)

    gen_tokens = sum(len(s) for s in seqs)
    corpus = corpus_data(engine, Path(args.corpus), args.corpus_tokens, args.seq, args.seed)
    print(f"data: {len(seqs)} generated answers ({gen_tokens} tok, {sum(is_held)} held out), "
          f"{len(corpus)} corpus chunks", flush=True)  # fmt: skip
    train_gen = answers(held=False)
    corpus_feats = featurize(target, corpus, spec.capture_layers)
    train = train_gen + examples(corpus, corpus_feats, [0] * len(corpus), args.seq)
    held = answers(held=True)
    rng = random.Random(args.seed)
    n_tok = sum(len(t) for t, *_ in train)
    print(f"features: {len(train)} train seqs ({n_tok} tok), {len(held)} held out; "
          f"{time.monotonic() - t_start:.0f}s elapsed", flush=True)  # fmt: skip

    head = EagleHead(spec, target)
    if vd:
        ids = draft_vocabulary(train + train_gen * 4, target.cfg.vocab_size, vd).to(target.device)
        head.d2t.copy_(ids - torch.arange(vd, device=target.device))
    init_from_target(head, target, args.seed)
    params = head.trainable()
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed)
    # Losses over the draft vocabulary only: all the head will ever propose (EAGLE-3 does the
    # same), and 6x cheaper than the full one on SmolLM2.
    lm_head = target.lm_head[head.draft_to_target] if vd else target.lm_head
    train_start = time.monotonic()
    step, last_log = 0, 0.0
    dim = target.cfg.dim
    held_b = batch(held, 16, args.seq, random.Random(1), target.device, dim)
    while time.monotonic() < deadline:
        frac = (time.monotonic() - train_start) / max(deadline - train_start, 1)
        lr = (
            args.lr * min(1.0, (step + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        b = batch(train, args.batch, args.seq, rng, target.device, dim)
        if not bool(b[-1].any()):  # every window fell inside prompts: nothing to learn from
            continue
        with torch.autocast(target.device.type, torch.bfloat16, enabled=args.train_bf16):
            reg, ce, acc = losses(
                head, lm_head, b, args.ce_positions, args.noise, gen, args.depth,
                args.exact_chain, args.deep_batch,
            )  # fmt: skip
        loss = reg + args.ce_weight * ce if head.kind == EAGLE1 else ce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.5)
        opt.step()
        step += 1
        if time.monotonic() - last_log > 60 or time.monotonic() >= deadline:
            last_log = time.monotonic()
            hacc = held_accuracy(head, lm_head, held_b)
            print(f"step {step} lr {lr:.2e} reg {reg.item():.4f} ce {ce.item():.3f} "
                  f"train-acc {acc():.3f} held-acc {hacc:.3f} "
                  f"{time.monotonic() - t_start:.0f}s", flush=True)  # fmt: skip
    for p in params:
        p.requires_grad_(False)
    hacc = held_accuracy(head, lm_head, held_b)
    meta = {"target": str(args.target), "steps": step, "train_tokens": n_tok,
            "generated_tokens": gen_tokens, "held_out_top1": round(float(hacc), 4),
            "minutes": round((time.monotonic() - t_start) / 60, 1)}  # fmt: skip
    head.prepare()
    out = save_head(head, args.out, meta)
    print(f"saved {out} ({meta})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
