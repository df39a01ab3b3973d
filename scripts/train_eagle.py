"""Train an EAGLE draft head (EAGLE-1 or EAGLE-3) for a target by self-distillation, on CPU or GPU.

Data (`eagle_data.py`): the target's own greedy/sampled answers to code prompts, generated in
batches by a transformers twin of the engine model (bf16 by default) that records the target's
final hidden state (and, for EAGLE-3, the inputs of its three feature layers) at every position
as it goes, plus a little Python source from disk.
Loss: EAGLE-1: smooth-L1 between the head's and the target's next feature, plus 0.1 x
cross-entropy against the target's next-token distribution through the shared LM head.
EAGLE-3: that cross-entropy alone, through the head's own LM head.

    python -m scripts.train_eagle --target smollm2 --out heads/smollm2-eagle --minutes 20
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

from engine.eagle import EAGLE1, EAGLE3, EagleHead, HeadSpec, head_spec_for
from engine.eagle_io import save_head
from engine.engine import Engine
from engine.errors import EngineError
from engine.model import Transformer

try:  # `python -m scripts.NAME` from the repository root
    from scripts.eagle_data import DTYPES, collect_answers, corpus_data, featurize, match_prompts
    from scripts.eagle_losses import batch, held_accuracy, losses
    from scripts.eagle_prompts import training_prompts
except ModuleNotFoundError:  # `python scripts/NAME.py`: this folder is on the path
    from eagle_data import DTYPES, collect_answers, corpus_data, featurize, match_prompts
    from eagle_losses import batch, held_accuracy, losses
    from eagle_prompts import training_prompts

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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    return args


def load_data(
    engine: Engine, args: argparse.Namespace, spec: HeadSpec, t_start: float
) -> tuple[list[Example], list[Example], list[Example], int]:
    """(train, held-out, generated train examples, generated tokens): the target's answers to
    the training prompts (whole prompts held out) plus Python source from disk."""
    target = engine.model
    prompts = training_prompts(args.prompts, args.seed)
    n_held = max(1, len(prompts) // 20)  # whole prompts held out: generalisation, not recall
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
    n_tok = sum(len(t) for t, *_ in train)
    print(f"features: {len(train)} train seqs ({n_tok} tok), {len(held)} held out; "
          f"{time.monotonic() - t_start:.0f}s elapsed", flush=True)  # fmt: skip
    return train, held, train_gen, gen_tokens


def new_head(
    spec: HeadSpec, target: Transformer, train: list[Example], vd: int | None, seed: int
) -> EagleHead:
    """A head initialised from the target, drafting over the `vd` most frequent tokens."""
    head = EagleHead(spec, target)
    if vd:
        ids = draft_vocabulary(train, target.cfg.vocab_size, vd).to(target.device)
        head.d2t.copy_(ids - torch.arange(vd, device=target.device))
    init_from_target(head, target, seed)
    return head


def train(
    head: EagleHead,
    train_data: list[Example],
    held: list[Example],
    args: argparse.Namespace,
    t_start: float,
    deadline: float,
) -> tuple[int, float]:
    """Train until `deadline`; returns (steps, held-out top-1 agreement)."""
    target = head.target
    vd = head.reduced_vocab
    params = head.trainable()
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed)
    rng = random.Random(args.seed)
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
        b = batch(train_data, args.batch, args.seq, rng, target.device, dim)
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
    return step, held_accuracy(head, lm_head, held_b)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
    vd = args.draft_vocab if 0 < args.draft_vocab < target.cfg.vocab_size else None
    if args.kind == EAGLE3 and not vd:
        vd = target.cfg.vocab_size  # EAGLE-3 always has its own LM head and d2t
    spec = head_spec_for(target, args.kind, n_layers=args.layers, draft_vocab_size=vd)
    train_data, held, train_gen, gen_tokens = load_data(engine, args, spec, t_start)
    head = new_head(spec, target, train_data + train_gen * 4, vd, args.seed)
    step, hacc = train(head, train_data, held, args, t_start, deadline)
    n_tok = sum(len(t) for t, *_ in train_data)
    meta = {"target": str(args.target), "steps": step, "train_tokens": n_tok,
            "generated_tokens": gen_tokens, "held_out_top1": round(float(hacc), 4),
            "minutes": round((time.monotonic() - t_start) / 60, 1)}  # fmt: skip
    head.prepare()
    out = save_head(head, args.out, meta)
    print(f"saved {out} ({meta})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
