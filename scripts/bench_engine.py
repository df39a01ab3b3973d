"""Benchmark the engine against transformers on SmolLM2 (fp32, CPU), in one process.

Reports decode tokens/s at batch 1 (ours vs `transformers.generate`), decode as a fraction of
the memory-bandwidth limit (weight bytes per token / bandwidth measured here), and the time to
first token of a second chat turn that shares a long prefix, against a cold prefill.
Usage: python -m scripts.bench_engine [--model smollm2] [--tokens 128] [--prefix 4096] [--json]
With --quantized: the GGUF's weights as stored against their fp32 expansion, each in fresh
processes alternated --rounds times: decode and prefill (--prompt-tokens) tok/s, and RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from engine.engine import Engine

try:  # `python -m scripts.NAME` from the repository root
    from scripts.engine_models import gguf_f32_copy, hf_twin, read_bandwidth
except ModuleNotFoundError:  # `python scripts/NAME.py`: this folder is on the path
    from engine_models import gguf_f32_copy, hf_twin, read_bandwidth

ROOT = Path(__file__).resolve().parents[1]  # children run as `python -m scripts.bench_engine`
TEXT = "The history of computing is a story of people, machines and ideas. " * 4


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def hf_reference(eng: Engine) -> torch.nn.Module:
    """transformers' twin of the engine model holding the same (dequantised) weights."""
    return hf_twin(eng.model.cfg, eng.checkpoint.tensors(set(eng.model.weight_targets())))


def hf_decode_tok_s(model: torch.nn.Module, prompt: list[int], n: int) -> float:
    ids = torch.tensor([prompt])
    model.generation_config.eos_token_id = None
    kw = dict(do_sample=False, pad_token_id=0)

    def run(k: int) -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            model.generate(ids, max_new_tokens=k, min_new_tokens=k, **kw)
        return time.perf_counter() - t

    run(2)
    one = min(run(1) for _ in range(2))
    full = run(n)
    return (n - 1) / (full - one)


def ours_decode_tok_s(eng: Engine, prompt: list[int], n: int, repeats: int = 2) -> float:
    best = 0.0
    for _ in range(repeats):
        eng.reset()
        for _tok in eng.generate(prompt, n, stop_at_eos=False):
            pass
        t = eng.last_timings
        # The first token comes from the prefill: decode rate is over the remaining n - 1.
        best = max(best, (t.decode_tokens - 1) / t.decode_s if t.decode_s else 0.0)
    return best


def prefix_reuse(eng: Engine, prefix_tokens: int) -> tuple[float, float, int]:
    """(cold TTFT s, warm second-turn TTFT s, reused tokens) with a long shared conversation."""
    unit = eng.tokenizer.encode(TEXT)
    body = eng.tokenizer.decode((unit * (prefix_tokens // len(unit) + 1))[:prefix_tokens])
    turn1 = [{"role": "user", "content": body}]
    first = eng.tokenizer.encode_chat(turn1, None, None)
    turn2 = [*turn1, {"role": "assistant", "content": "Noted."}, {"role": "user", "content": "Summarise it."}]  # fmt: skip
    second = eng.tokenizer.encode_chat(turn2, None, None)
    eng.reset()
    next(iter(eng.generate(second, 1)))
    cold = eng.last_timings.prefill_s
    eng.reset()
    next(iter(eng.generate(first, 1)))  # turn 1 leaves its conversation in the cache
    next(iter(eng.generate(second, 1)))
    return cold, eng.last_timings.prefill_s, eng.last_timings.reused_tokens


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB."""
    import resource

    current = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quant_child(model: str, path: str, tokens: int, prompt_tokens: int, max_context: int) -> dict:
    """One process, one weight path ('quant' as stored, 'dequant' expanded to fp32): load,
    prefill `prompt_tokens`, decode `tokens`; tok/s and RSS (MiB) after import/load/run."""
    base, _ = _rss_mb()
    t0 = time.perf_counter()
    eng = Engine.load(
        model, device="cpu", dtype="float32", max_context=max_context,
        dequantize=path == "dequant",
    )  # fmt: skip
    load_s = time.perf_counter() - t0
    loaded, _ = _rss_mb()
    unit = eng.tokenizer.encode(TEXT)
    prompt = (unit * (prompt_tokens // len(unit) + 1))[:prompt_tokens]
    best: dict[str, float] = {"decode": 0.0, "prefill": 0.0}
    for _ in range(3):
        eng.reset()
        for _tok in eng.generate(prompt, tokens, stop_at_eos=False):
            pass
        t = eng.last_timings
        best["decode"] = max(best["decode"], (t.decode_tokens - 1) / t.decode_s)
        best["prefill"] = max(best["prefill"], prompt_tokens / t.prefill_s)
    c = eng.model.cfg
    kv_mb = 2 * c.n_layers * c.n_kv_heads * c.head_dim * max_context * 4 / 2**20
    _, peak = _rss_mb()
    file_mb = eng.checkpoint.files[0].stat().st_size / 2**20
    return {
        "path": path, "decode_tok_s": round(best["decode"], 2),
        "prefill_tok_s": round(best["prefill"], 1), "load_s": round(load_s, 2),
        "rss_base_mb": round(base), "rss_loaded_mb": round(loaded), "rss_peak_mb": round(peak),
        "kv_cache_mb": round(kv_mb), "file_mb": round(file_mb),
        "file": str(eng.checkpoint.files[0]),
        "weights_mb": round(eng.model.weight_bytes() / 2**20, 1),
    }  # fmt: skip


def quant_vs_dequant(args: argparse.Namespace) -> dict:
    """Alternate fresh processes of both paths; medians of decode/prefill tok/s, max RSS."""
    import statistics
    import subprocess

    runs: dict[str, list[dict]] = {"quant": [], "dequant": []}
    for _ in range(args.rounds):
        for path in runs:
            cmd = [
                sys.executable, "-m", "scripts.bench_engine", "--child", path, "--model", args.model,
                "--tokens", str(args.tokens), "--prompt-tokens", str(args.prompt_tokens),
                "--threads", str(args.threads or torch.get_num_threads()),
            ]  # fmt: skip
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
            runs[path].append(json.loads(out.strip().splitlines()[-1]))
    summary: dict[str, object] = {"threads": args.threads or torch.get_num_threads()}
    for path, rows in runs.items():
        for key in ("decode_tok_s", "prefill_tok_s"):
            summary[f"{path}_{key}"] = round(statistics.median(r[key] for r in rows), 2)
        for key in ("rss_base_mb", "rss_loaded_mb", "rss_peak_mb", "weights_mb"):
            summary[f"{path}_{key}"] = max(r[key] for r in rows)
    summary["file_mb"] = runs["quant"][0]["file_mb"]
    summary["kv_cache_mb"] = runs["quant"][0]["kv_cache_mb"]
    speedup = float(summary["quant_decode_tok_s"]) / float(summary["dequant_decode_tok_s"])  # type: ignore[arg-type]
    summary["decode_speedup"] = round(speedup, 2)
    return summary


def vs_llamacpp(args: argparse.Namespace) -> dict:
    """Our engine (GGUF weights as stored, fresh process) and llama.cpp's llama-bench on the
    same file and threads, alternated; medians of each."""
    import statistics
    import subprocess

    try:
        from scripts.llamacpp import ensure_llama_bench, llama_bench
    except ModuleNotFoundError:
        from llamacpp import ensure_llama_bench, llama_bench

    binary = ensure_llama_bench()
    threads = args.threads or torch.get_num_threads()
    model = args.model
    if args.f32:  # both engines on an fp32 copy of the GGUF
        from engine.checkpoint import resolve

        src = resolve(args.model).files[0]
        model = str(gguf_f32_copy(src, binary.parents[3] / f"{src.stem}-f32.gguf"))
    ours: list[dict] = []
    theirs: list[dict] = []
    for _ in range(args.rounds):
        cmd = [
            sys.executable, "-m", "scripts.bench_engine", "--child", "quant", "--model",
            model, "--tokens", str(args.tokens), "--prompt-tokens", str(args.prompt_tokens),
            "--threads", str(threads),
        ]  # fmt: skip
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        ours.append(json.loads(out.strip().splitlines()[-1]))
        gguf = Path(ours[-1]["file"])
        theirs.append(llama_bench(binary, gguf, threads, args.prompt_tokens, args.tokens))
    summary: dict[str, object] = {"threads": threads, "file": ours[0]["file"]}
    for key in ("decode_tok_s", "prefill_tok_s"):
        mine = statistics.median(r[key] for r in ours)
        other = statistics.median(r[key] for r in theirs)
        summary[f"ours_{key}"] = round(mine, 2)
        summary[f"llamacpp_{key}"] = round(other, 2)
        summary[f"ratio_{key}"] = round(mine / other, 2) if other else None
    summary["ours_rss_peak_mb"] = max(r["rss_peak_mb"] for r in ours)
    return summary


def print_rows(rows: dict, as_json: bool) -> None:
    """One JSON line, or an aligned `key  value` table."""
    if as_json:
        print(json.dumps(rows))
        return
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--tokens", type=int, default=128, help="decoded tokens per run")
    ap.add_argument("--prefix", type=int, default=4096, help="shared prefix length in tokens")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved decode measurements")
    ap.add_argument(
        "--quantized",
        action="store_true",
        help="compare the GGUF's weights as stored with the fp32 expansion (tok/s, RSS)",
    )
    ap.add_argument("--prompt-tokens", type=int, default=64, help="prefill length (--quantized)")
    ap.add_argument(
        "--vs-llamacpp",
        action="store_true",
        help="our engine against llama.cpp's llama-bench on the same GGUF (builds it once)",
    )
    ap.add_argument(
        "--f32", action="store_true", help="with --vs-llamacpp: both on an fp32 copy of the GGUF"
    )
    ap.add_argument("--child", choices=("quant", "dequant"), help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        if args.threads:
            torch.set_num_threads(args.threads)
        row = quant_child(args.model, args.child, args.tokens, args.prompt_tokens, 512)
        print(json.dumps(row))
        return 0
    if args.quantized or args.vs_llamacpp:
        rows = vs_llamacpp(args) if args.vs_llamacpp else quant_vs_dequant(args)
        print_rows(rows, args.json)
        return 0
    # The machine's bandwidth is measured with every core, whatever --threads says.
    bandwidth = read_bandwidth()
    if args.threads:
        torch.set_num_threads(args.threads)
    # fp32 weights on both sides: a GGUF is expanded as transformers holds it
    eng = Engine.load(args.model, device="cpu", dtype="float32", dequantize=True)
    prompt = eng.tokenizer.encode_chat([{"role": "user", "content": TEXT}], None, None)
    weight_bytes = eng.model.weight_bytes()
    reference = hf_reference(eng)
    ours = theirs = 0.0
    for _ in range(args.rounds):  # interleaved, best of each: other load on the box varies
        ours = max(ours, ours_decode_tok_s(eng, prompt, args.tokens, repeats=1))
        theirs = max(theirs, hf_decode_tok_s(reference, prompt, args.tokens))
    del reference
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads, _cores()))
    bandwidth = max(bandwidth, read_bandwidth())  # the best of before and after: load varies
    torch.set_num_threads(threads)
    limit = bandwidth / weight_bytes
    cold, warm, reused = prefix_reuse(eng, args.prefix)
    rows = {
        "threads": torch.get_num_threads(),
        "prompt_tokens": len(prompt),
        "decode_tokens": args.tokens,
        "ours_decode_tok_s": round(ours, 2),
        "transformers_decode_tok_s": round(theirs, 2),
        "speedup_vs_transformers": round(ours / theirs, 2),
        "weight_mb_per_token": round(weight_bytes / 2**20, 1),
        "read_bandwidth_gb_s": round(bandwidth / 1e9, 2),
        "bandwidth_limit_tok_s": round(limit, 2),
        "fraction_of_limit": round(ours / limit, 3),
        "cold_prefill_ttft_ms": round(cold * 1000, 1),
        "warm_turn_ttft_ms": round(warm * 1000, 1),
        "warm_over_cold": round(warm / cold, 3),
        "reused_tokens": reused,
    }
    print_rows(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
