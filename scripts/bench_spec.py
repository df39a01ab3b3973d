"""Benchmark EAGLE speculative decoding against the plain engine, in one process.

For each held-out code prompt: decode tokens/s of the engine's normal greedy path and of
speculative decoding (same model and prompt, up to --max-tokens, ending where the answer ends as
a user's run does; runs interleaved so machine noise hits both), whether the outputs are
identical, mean accepted length and per-position acceptance; then a synthetic-acceptance sweep
(acceptance forced to alpha, fixed length) charting the mechanical speedup.

    python -m scripts.bench_spec --model smollm2 --draft /tmp/smollm2-eagle --spec-k 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from engine.decoder import Decoder
from engine.eagle import EagleHead
from engine.eagle_io import load_head
from engine.engine import Engine
from engine.errors import EngineError
from engine.events import Timings
from engine.lookup import DEFAULT_NGRAM
from engine.model import Transformer
from engine.sampling import SamplingParams
from engine.spec import EagleDrafter, SpecStats, Speculator

try:  # `python -m scripts.NAME` from the repository root
    from scripts.eagle_prompts import BENCH_PROMPTS
except ModuleNotFoundError:  # `python scripts/NAME.py`: this folder is on the path
    from eagle_prompts import BENCH_PROMPTS


def plain_run(engine: Engine, ids: list[int], n: int, eos: bool) -> tuple[list[int], float]:
    """The engine's normal greedy path; decode tokens/s after the first (prefill) token."""
    out = list(engine.generate(ids, n, stop_at_eos=eos))
    t = engine.last_timings
    return out, (t.decode_tokens - 1) / t.decode_s if t and t.decode_s else 0.0


def spec_run(
    dec: Speculator, target: Decoder, ids: list[int], n: int, stop: frozenset[int]
) -> tuple[list[int], float]:
    """Speculative greedy decoding from a cold target cache."""
    timings = Timings()
    target.reset()
    out = list(target.speculate(dec, ids, SamplingParams(), n, None, stop, timings))
    return out, (timings.decode_tokens - 1) / timings.decode_s if timings.decode_s else 0.0


@torch.inference_mode()
def teacher_forced_hits(head: EagleHead, model: Transformer, ids: list[int], n_answer: int) -> int:
    """How many of the answer's last n_answer tokens the head's first draft gets right when fed
    the target's own features (no earlier drafting errors): the head's accuracy alone, free of
    timing noise."""
    out = model.forward(
        torch.tensor(ids), torch.arange(len(ids)), model.new_cache(),
        capture_layers=head.capture_layers,
    )  # fmt: skip
    feats = head.target_features(out)
    # Pair p (token p+1, feature p) predicts token p+2.
    state = head.run(torch.tensor(ids[1:-1]), feats[:-2], torch.arange(len(ids) - 2), None, True)
    guess = head.draft_logits(state).argmax(-1)
    return int((guess == torch.tensor(ids[2:]))[-n_answer:].sum())


def merge(total: SpecStats, s: SpecStats) -> None:
    total.rounds += s.rounds
    total.emitted += s.emitted
    total.drafted += s.drafted
    total.accepted += s.accepted
    total.draft_s += s.draft_s
    total.verify_s += s.verify_s
    total.copied += s.copied
    total.copied_accepted += s.copied_accepted
    for i in range(total.k):
        total.drafted_at[i] += s.drafted_at[i]
        total.accepted_at[i] += s.accepted_at[i]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--draft", required=True, help="EAGLE head folder")
    ap.add_argument("--spec-k", type=int, default=4)
    ap.add_argument(
        "--lookup",
        type=int,
        default=DEFAULT_NGRAM,
        help=f"prompt-lookup n-gram length (default {DEFAULT_NGRAM}; 0: the head alone)",
    )
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=len(BENCH_PROMPTS))
    ap.add_argument(
        "--alphas", default="0,0.25,0.5,0.75,0.9,1.0", help="synthetic sweep ('' = off)"
    )
    ap.add_argument("--sweep-tokens", type=int, default=64)
    ap.add_argument(
        "--ignore-eos",
        action="store_true",
        help="decode --max-tokens past the end of the answer (the target then makes up text no "
        "user sees; earlier measurements did this)",
    )
    ap.add_argument("--repeat", type=int, default=2, help="interleaved runs, best kept")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", dest="json_out", default=None, help="also write results here")
    args = ap.parse_args(argv)
    if args.lookup < 0:
        ap.error("--lookup must be 0 (off) or an n-gram length")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        engine = Engine.load(args.model, max_context=1024)
        head = load_head(args.draft, engine.model)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    dec = Speculator(EagleDrafter(head, args.lookup), args.spec_k)
    total = SpecStats(args.spec_k)
    rows, same, tf_hits = [], 0, 0
    prompts = BENCH_PROMPTS[: args.prompts]
    cache = Decoder(engine.model)
    stop = frozenset() if args.ignore_eos else engine.tokenizer.eos_ids
    hi = engine.tokenizer.encode_chat([{"role": "user", "content": "hi"}], None, None)
    spec_run(dec, cache, hi, 8, frozenset())
    answer_tokens = 0
    for text in prompts:
        ids = engine.tokenizer.encode_chat([{"role": "user", "content": text}], None, None)
        base_tps = spec_tps = 0.0
        for _ in range(args.repeat):  # interleaved, best of each: the machine is shared
            base, tps = plain_run(engine, ids, args.max_tokens, not args.ignore_eos)
            base_tps = max(base_tps, tps)
            spec, tps = spec_run(dec, cache, ids, args.max_tokens, stop)
            spec_tps = max(spec_tps, tps)
        merge(total, dec.stats)
        same += base == spec
        tf_hits += teacher_forced_hits(head, engine.model, ids + base, len(base))
        answer_tokens += len(base)
        rows.append({"prompt": text, "tokens": len(base), "plain_tok_s": round(base_tps, 2), "spec_tok_s": round(spec_tps, 2),
                     "speedup": round(spec_tps / base_tps, 3) if base_tps else None,
                     "identical": base == spec, "tau": round(dec.stats.mean_accepted_length, 3)})  # fmt: skip
        print(f"{base_tps:6.2f} -> {spec_tps:6.2f} tok/s  tau {dec.stats.mean_accepted_length:.2f}  "
              f"{'same' if base == spec else 'DIFFERENT'}  {text[:50]}", flush=True)  # fmt: skip
    plain_tps = statistics.mean(r["plain_tok_s"] for r in rows)
    spec_tps = statistics.mean(r["spec_tok_s"] for r in rows)
    summary = {"model": args.model, "draft": args.draft, "k": args.spec_k, "max_tokens": args.max_tokens,
               "threads": torch.get_num_threads(), "repeat": args.repeat,
               "stop_at_eos": not args.ignore_eos, "answer_tokens": answer_tokens, "plain_tok_s": round(plain_tps, 2),
               "spec_tok_s": round(spec_tps, 2), "speedup": round(spec_tps / plain_tps, 3),
               "identical_outputs": f"{same}/{len(rows)}",
               "teacher_forced_top1": round(tf_hits / answer_tokens, 4),
               **total.as_dict()}  # fmt: skip
    print(json.dumps(summary, indent=2))
    sweep = []
    forced_cache = Decoder(engine.model)
    for a in [float(x) for x in args.alphas.split(",") if x.strip()]:
        drafter = EagleDrafter(head, args.lookup)
        forced = Speculator(drafter, args.spec_k, forced_alpha=a)
        ids = engine.tokenizer.encode_chat([{"role": "user", "content": prompts[0]}], None, None)
        t0 = time.perf_counter()
        base_tps = tps = 0.0
        for _ in range(args.repeat):
            # Forced drafts are not the target's text: fixed length, end of answer or not.
            base_tps = max(base_tps, plain_run(engine, ids, args.sweep_tokens, False)[1])
            tps = max(tps, spec_run(forced, forced_cache, ids, args.sweep_tokens, frozenset())[1])
        sweep.append({"alpha": a, "tau": round(forced.stats.mean_accepted_length, 3),
                      "plain_tok_s": round(base_tps, 2), "spec_tok_s": round(tps, 2),
                      "speedup": round(tps / base_tps, 3) if base_tps else None})  # fmt: skip
        bar = "#" * round(20 * tps / base_tps) if base_tps else ""
        print(f"alpha {a:4.2f} tau {forced.stats.mean_accepted_length:4.2f} "
              f"speedup {tps / base_tps:5.2f}x {bar}  ({time.perf_counter() - t0:.0f}s)", flush=True)  # fmt: skip
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps({"summary": summary, "prompts": rows, "sweep": sweep}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
