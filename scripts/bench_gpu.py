"""GPU decode benchmark (issue 9): random-weight models of real shapes in bf16, batch 1.

Per model: engine decode tokens/s (Triton kernels + CUDA graphs) against the HBM limit (weight and
KV bytes read per token / copy bandwidth measured in this run), against transformers `generate`
with a static cache and `torch.compile`, and EAGLE at a synthetic acceptance giving tau ~ 3.

    python -m scripts.bench_gpu [--models mistral-7b,devstral-24b] [--json out.json]

Without CUDA it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from engine.config import ModelConfig
from engine.decoder import Decoder
from engine.model import Transformer

try:  # `python -m scripts.NAME` from the repository root
    from scripts.engine_models import hf_twin, random_model, read_bandwidth
except ModuleNotFoundError:  # `python scripts/NAME.py`: this folder is on the path
    from engine_models import hf_twin, random_model, read_bandwidth

SHAPES = {
    "mistral-7b": dict(dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, hidden_dim=14336,
                       vocab_size=32768),
    "devstral-24b": dict(dim=5120, n_layers=40, n_heads=32, n_kv_heads=8, hidden_dim=32768,
                         vocab_size=131072),
}  # fmt: skip


def config(name: str) -> ModelConfig:
    return ModelConfig(model_type="mistral", head_dim=128, norm_eps=1e-5, rope_theta=1e6,
                       max_position_embeddings=32768, **SHAPES[name])  # fmt: skip


def engine_decode(model: Transformer, prompt: list[int], n: int) -> float:
    """Tokens/s of greedy decode through the decode core (CUDA graphs; one host sync per
    token for the id)."""
    decoder = Decoder(model)
    for _ in range(2):  # warm-up: kernel compilation and graph capture (on the 2nd sight)
        decoder.reset()
        logits = decoder.prefill(prompt)[0].logits
        for _i in range(4):
            logits = decoder.step(int(logits[-1].argmax()))
    decoder.reset()
    logits = decoder.prefill(prompt)[0].logits
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _i in range(n):
        logits = decoder.step(int(logits[-1].argmax()))
    torch.cuda.synchronize()
    return n / (time.perf_counter() - t)


def hbm_limit(model: Transformer, context: float, bandwidth: float) -> float:
    """Tokens/s if each step only read the weights and `context` cached positions at `bandwidth`."""
    c = model.cfg
    kv = 2 * c.n_layers * c.n_kv_heads * c.head_dim * context * 2  # bf16 keys + values
    return bandwidth / (model.weight_bytes() + kv)


def transformers_decode(cfg: ModelConfig, prompt: list[int], n: int) -> float:
    """transformers `generate` tokens/s: static cache, forward compiled with reduce-overhead."""
    model = hf_twin(replace(cfg, sliding_window=None), None, torch.bfloat16, "cuda")
    model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
    ids = torch.tensor([prompt], device="cuda")

    def gen(tokens: int) -> float:
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                       cache_implementation="static", pad_token_id=0)  # fmt: skip
        torch.cuda.synchronize()
        return time.perf_counter() - t

    for _ in range(3):  # compilation and CUDA-graph warm-up
        gen(n)
    one, full = min(gen(1) for _ in range(2)), min(gen(n) for _ in range(2))
    return (n - 1) / (full - one)  # the model is freed when this frame goes


def alpha_for_tau(tau: float, k: int) -> float:
    """Acceptance rate whose expected tokens per verify (1 + a + ... + a^k) equals tau."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(mid**i for i in range(k + 1)) < tau else (lo, mid)
    return lo


def eagle_decode(model: Transformer, prompt: list[int], n: int, k: int, tau: float) -> dict:
    """Speculative decode tokens/s with a random EAGLE head and acceptance forced to give tau."""
    from engine.eagle import head_spec_for, random_head
    from engine.events import Timings
    from engine.sampling import SamplingParams
    from engine.spec import EagleDrafter, Speculator

    head = random_head(head_spec_for(model), model)
    dec = Speculator(EagleDrafter(head), k, forced_alpha=alpha_for_tau(tau, k))
    target = Decoder(model)
    tps = 0.0
    for _ in range(3):  # the first run compiles and captures
        timings = Timings()
        gen = torch.Generator(device="cuda").manual_seed(0)
        target.reset()
        stream = target.speculate(dec, prompt, SamplingParams(), n, gen, frozenset(), timings)
        for _tok in stream:
            pass
        if timings.decode_s:
            tps = max(tps, (timings.decode_tokens - 1) / timings.decode_s)
    return {"tok_s": tps, "tau": dec.stats.mean_accepted_length, "k": k}


def quant_matmul(cfg: ModelConfig, bandwidth: float, rows: int = 1) -> dict[str, Any]:
    """Microseconds and % of copy bandwidth of one gate|up matmul (the largest per layer) with
    `rows` activation rows: bf16 F.linear against the weight-only int8 / int4 / FP8 matrices
    (`engine.gpu_quant`; FP8 row-scaled takes `torch._scaled_mm` on sm_89+)."""
    from functools import partial

    from engine import gpu_quant

    w = torch.randn(2 * cfg.hidden_dim, cfg.dim, device="cuda", dtype=torch.bfloat16) * 0.02
    x = torch.randn(rows, cfg.dim, device="cuda", dtype=torch.bfloat16)
    mats: dict[str, Any] = {"bf16": w}
    for kind in ("int8", "int4", "int4-g128", "fp8", "fp8-b128"):
        mats[kind] = gpu_quant.empty(kind, *w.shape, "cuda").copy_(w)
    row: dict[str, Any] = {"matmul": f"{w.shape[0]}x{w.shape[1]}", "rows": rows}
    for kind, m in mats.items():
        nbytes = w.numel() * 2 if kind == "bf16" else m.nbytes()
        run = partial(torch.nn.functional.linear, x, w) if m is w else partial(m.linear, x)
        for _ in range(3):
            run()
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(100):
            run()
        torch.cuda.synchronize()
        us = (time.perf_counter() - t) / 100 * 1e6
        pct = 100 * nbytes / (us * 1e-6) / bandwidth
        row[kind] = {"us": round(us, 1), "hbm_pct": round(pct, 1)}
    return row


def bench(name: str, args: argparse.Namespace, bandwidth: float) -> dict[str, Any]:
    cfg = config(name)
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(0, cfg.vocab_size, (args.prompt,), generator=gen).tolist()
    model = random_model(cfg, args.prompt + args.tokens + 64)
    row: dict[str, Any] = {"model": name, "weight_gb": model.weight_bytes() / 1e9}
    row["engine_tok_s"] = engine_decode(model, prompt, args.tokens)
    row["hbm_limit_tok_s"] = hbm_limit(model, args.prompt + args.tokens / 2, bandwidth)
    row["hbm_fraction"] = row["engine_tok_s"] / row["hbm_limit_tok_s"]
    if not args.skip_quant:
        row["quant_matmul"] = [quant_matmul(cfg, bandwidth, r) for r in (1, 16)]
    if not args.skip_eagle:
        row["eagle"] = eagle_decode(model, prompt, args.tokens, args.spec_k, args.tau)
        row["eagle_speedup"] = row["eagle"]["tok_s"] / row["engine_tok_s"]
    del model
    gc.collect()
    torch.cuda.empty_cache()
    if not args.skip_hf:
        try:
            row["hf_tok_s"] = transformers_decode(cfg, prompt, args.tokens)
            row["vs_hf"] = row["engine_tok_s"] / row["hf_tok_s"]
        except Exception as exc:  # report the baseline's failure, keep the engine's numbers
            row["hf_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        gc.collect()
        torch.cuda.empty_cache()
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mistral-7b,devstral-24b")
    p.add_argument("--prompt", type=int, default=512, help="prompt tokens")
    p.add_argument("--tokens", type=int, default=256, help="decoded tokens")
    p.add_argument("--spec-k", type=int, default=4)
    p.add_argument("--tau", type=float, default=3.0, help="synthetic mean accepted length")
    p.add_argument("--skip-hf", action="store_true")
    p.add_argument("--skip-eagle", action="store_true")
    p.add_argument("--skip-quant", action="store_true", help="no quantized-matmul rows")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here; nothing to measure (needs an H100/H200).")
        return 0
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        print(f"error: unknown model {unknown[0]!r} (choose from {', '.join(SHAPES)})")
        return 2
    props = torch.cuda.get_device_properties(0)
    import transformers
    import triton

    meta = {"device": props.name, "memory_gb": round(props.total_memory / 1e9, 1),
            "torch": torch.__version__, "triton": triton.__version__,
            "transformers": transformers.__version__,
            "vibe_kernels": os.environ.get("VIBE_KERNELS", "auto"),
            "cuda_graphs": os.environ.get("VIBE_CUDA_GRAPHS", "1")}  # fmt: skip
    meta["copy_bandwidth_gb_s"] = read_bandwidth("cuda", gib=4.0, repeats=20) / 1e9
    print(json.dumps(meta))
    rows = []
    for name in names:
        shell = Transformer(config(name), 8, torch.bfloat16, torch.device("meta"))
        need = shell.weight_bytes() + shell.embed.numel() * 2  # head and embedding both count
        if need * 1.2 > props.total_memory:
            print(f"{name}: skipped ({need / 1e9:.0f} GB of weights does not fit)")
            continue
        row = bench(name, args, meta["copy_bandwidth_gb_s"] * 1e9)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'model':14} {'tok/s':>8} {'HBM lim':>8} {'% HBM':>6} {'HF tok/s':>9} {'vs HF':>6} "
          f"{'EAGLE':>8} {'x':>5}")  # fmt: skip
    for r in rows:
        eagle = r.get("eagle", {}).get("tok_s", float("nan"))
        print(f"{r['model']:14} {r['engine_tok_s']:8.1f} {r['hbm_limit_tok_s']:8.1f} "
              f"{100 * r['hbm_fraction']:5.1f}% {r.get('hf_tok_s', float('nan')):9.1f} "
              f"{r.get('vs_hf', float('nan')):6.2f} {eagle:8.1f} "
              f"{r.get('eagle_speedup', float('nan')):5.2f}")  # fmt: skip
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
