"""`vibe engine generate|bench`: run the engine without the agent (the lead wires it to vibe)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from engine.errors import EngineError, first_line


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", required=True, help="checkpoint folder, .gguf file, or alias (smollm2)"
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)"
    )
    p.add_argument(
        "--dtype",
        default=None,
        help="float32, bfloat16, float16 (default: per device); activations only for a "
        "quantized GGUF",
    )
    p.add_argument("--max-context", type=int, default=None, help="KV cache length in tokens")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel size (GPUs; CPU: processes)")
    p.add_argument("--draft", default=None, help="EAGLE draft head folder (speculative decoding)")
    p.add_argument(
        "--spec-k", type=int, default=None, help="draft tokens per step with --draft (default 4)"
    )
    p.add_argument(
        "--dequantize",
        action="store_true",
        help="expand a GGUF file's quantized weights to --dtype at load (default: run as stored)",
    )
    p.add_argument(
        "--quantize",
        default=None,
        help="int8 | int4: quantize a float checkpoint's matrices at load (CPU: Q8_0 / Q4_1 "
        "blocks; CUDA: int8 / int4 Triton kernels)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="vibe engine", description="Run the embedded inference engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    gen = sub.add_parser("generate", help="generate tokens from a prompt")
    _add_common(gen)
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="prompt text (encoded with a BOS token)")
    src.add_argument("--prompt-ids", help="comma-separated prompt token ids")
    gen.add_argument("--chat", action="store_true", help="wrap --prompt as one user chat turn")
    gen.add_argument("--max-tokens", type=int, required=True)
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--top-k", type=int, default=0)
    gen.add_argument("--seed", type=int, default=None)
    bench = sub.add_parser("bench", help="measure prefill and decode tokens/s")
    _add_common(bench)
    bench.add_argument("--prompt-tokens", type=int, default=256)
    bench.add_argument("--max-tokens", type=int, default=64)
    bench.add_argument("--repeat", type=int, default=2, help="runs; the best is reported")
    bench.add_argument(
        "--spec-alpha",
        type=float,
        default=None,
        help="with --draft: force this acceptance rate (measures mechanics; output not exact)",
    )
    quant = sub.add_parser("quantize", help="quantize a checkpoint ahead of time into a folder")
    quant.add_argument("--model", required=True, help="fp16/bf16/fp32 checkpoint folder")
    quant.add_argument("--to", required=True, help="int8 (Q8_0) or int4 (Q4_1)")
    quant.add_argument("--out", required=True, help="folder to write (loads with --model DIR)")
    return parser


def _parse_ids(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise _UsageError(f"--prompt-ids must be comma-separated integers, got {text!r}") from exc


def _load(args: argparse.Namespace) -> Any:
    if args.tp < 1:
        raise _UsageError("--tp must be >= 1")
    if args.spec_k is not None and (args.draft is None or args.spec_k < 1):
        raise _UsageError("--spec-k needs --draft and must be >= 1")
    import torch

    from engine.engine import Engine

    if args.threads is not None:
        if args.threads < 1:
            raise _UsageError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    return Engine.load(
        args.model,
        tp=args.tp,
        draft=args.draft,
        device=args.device,
        dtype=args.dtype,
        max_context=args.max_context,
        spec_k=args.spec_k,
        dequantize=args.dequantize,
        quantize=args.quantize,
    )


def _generate(args: argparse.Namespace) -> int:
    if args.max_tokens < 0:
        raise _UsageError("--max-tokens must be >= 0")
    eng = _load(args)
    tok = eng.tokenizer
    if args.prompt_ids is not None:
        prompt = _parse_ids(args.prompt_ids)
    elif args.chat:
        prompt = tok.encode_chat([{"role": "user", "content": args.prompt}], None, None)
    else:
        prompt = tok.encode(args.prompt)
    from engine.parser import IncrementalDecoder

    decoder = IncrementalDecoder(tok.decode)
    out: list[int] = []
    stream = eng.generate(
        prompt, args.max_tokens, args.temperature, args.top_p, args.top_k, args.seed
    )
    for token in stream:
        out.append(token)
        if not args.json:
            sys.stdout.write(decoder.feed(token))
            sys.stdout.flush()
    timings = eng.last_timings.as_dict() if eng.last_timings else {}
    if args.json:
        result = {
            "prompt_ids": prompt,
            "token_ids": out,
            "text": tok.decode(out),
            "timings": timings,
        }
        if eng.speculator is not None:
            result["speculative"] = eng.speculator.stats.as_dict()
        print(json.dumps(result, ensure_ascii=False))
    else:
        print()
        print(
            f"[{timings.get('prompt_tokens')} prompt tokens, prefill {timings.get('prefill_ms')} ms, "
            f"{timings.get('decode_tokens')} tokens at {timings.get('decode_tok_s')} tok/s]",
            file=sys.stderr,
        )
    eng.close()
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.prompt_tokens < 1 or args.max_tokens < 1 or args.repeat < 1:
        raise _UsageError("--prompt-tokens, --max-tokens and --repeat must be >= 1")
    if args.spec_alpha is not None and (args.draft is None or not 0 <= args.spec_alpha <= 1):
        raise _UsageError("--spec-alpha needs --draft and must be in [0, 1]")
    eng = _load(args)
    if eng.speculator is not None:
        eng.speculator.forced_alpha = args.spec_alpha
    if args.prompt_tokens + args.max_tokens >= eng.context_length:
        raise _UsageError(f"prompt + generated tokens must stay below {eng.context_length}")
    base = eng.tokenizer.encode("The quick brown fox jumps over the lazy dog. " * 8)
    prompt = (base * (args.prompt_tokens // len(base) + 1))[: args.prompt_tokens]
    best: dict[str, float] = {}
    for run in range(args.repeat):
        eng.reset()  # cold prefill every run
        t0 = time.perf_counter()
        n = sum(1 for _ in eng.generate(prompt, args.max_tokens, stop_at_eos=False))
        total = time.perf_counter() - t0
        t = eng.last_timings
        row = {
            "prefill_tok_s": args.prompt_tokens / t.prefill_s,
            "decode_tok_s": t.decode_tok_s,
            "total_s": total,
            "tokens": n,
        }
        if not best or row["decode_tok_s"] > best["decode_tok_s"]:
            best = row
        if not args.json:
            print(
                f"run {run}: prefill {row['prefill_tok_s']:.1f} tok/s, decode {row['decode_tok_s']:.2f} tok/s"
            )
    result = {
        "model": args.model,
        "device": str(eng.model.device),
        "dtype": str(eng.model.dtype).removeprefix("torch."),
        "prompt_tokens": args.prompt_tokens,
        "max_tokens": args.max_tokens,
        "prefill_tok_s": round(best["prefill_tok_s"], 2),
        "decode_tok_s": round(best["decode_tok_s"], 2),
    }
    if eng.speculator is not None:
        result.update(_plain_decode(eng, prompt, args, best["decode_tok_s"]))
    print(
        json.dumps(result)
        if args.json
        else "best: " + ", ".join(f"{k}={v}" for k, v in result.items())
    )
    eng.close()
    return 0


def _plain_decode(
    eng: Any, prompt: list[int], args: argparse.Namespace, spec_tps: float
) -> dict[str, Any]:
    """The same bench without the draft head, plus the speculative statistics."""
    stats = eng.speculator.stats.as_dict()
    plain = 0.0
    for _ in range(args.repeat):
        eng.reset()
        stream = eng.generate(prompt, args.max_tokens, stop_at_eos=False, speculate=False)
        sum(1 for _ in stream)
        plain = max(plain, eng.last_timings.decode_tok_s)
    return {
        "plain_decode_tok_s": round(plain, 2),
        "speedup": round(spec_tps / plain, 3) if plain else None,
        "speculative": stats,
    }


def _quantize(args: argparse.Namespace) -> int:
    from engine.checkpoint import resolve
    from engine.quantize import save_quantized

    t0 = time.perf_counter()
    weights = save_quantized(resolve(args.model), args.to, args.out)
    size = weights.stat().st_size / 2**20
    print(f"wrote {weights} ({size:.1f} MiB) in {time.perf_counter() - t0:.1f} s")
    return 0


def main(argv: list[str]) -> int:
    """Entry point for `vibe engine ...`; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "quantize":
            return _quantize(args)
        return _generate(args) if args.command == "generate" else _bench(args)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (EngineError, ValueError) as exc:
        print(
            f"error: {first_line(exc)}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
