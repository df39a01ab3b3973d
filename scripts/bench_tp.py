"""Tensor parallelism on CPU: TP=N vs TP=1 correctness and decode speed, and the all-reduce
overhead per token, measured inside the model (rank 0's collectives timed) and in isolation
(a gloo all-reduce of one hidden-size vector between two processes).

    .venv/bin/python -m scripts.bench_tp [--tp 2] [--dim 1024 --layers 8 ...] [--json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import torch

from engine.checkpoint import resolve
from engine.config import ModelConfig
from engine.engine import load_model

try:  # `python -m scripts.NAME` from the repository root
    from scripts.engine_models import random_checkpoint
except ModuleNotFoundError:  # `python scripts/NAME.py`: this folder is on the path
    from engine_models import random_checkpoint


def write_checkpoint(root: Path, a: argparse.Namespace) -> Path:
    """A random-weight Mistral-shaped HF checkpoint (config.json + model.safetensors)."""
    cfg = ModelConfig(
        model_type="mistral", vocab_size=a.vocab, dim=a.dim, n_layers=a.layers, n_heads=a.heads,
        n_kv_heads=a.kv_heads, head_dim=a.dim // a.heads, hidden_dim=a.hidden, norm_eps=1e-5,
        rope_theta=1e6, max_position_embeddings=4096,
    )  # fmt: skip
    return random_checkpoint(root, cfg)


class CollectiveTimer:
    """Wraps rank 0's TPContext collectives to add up the time spent in them."""

    def __init__(self, tp: object) -> None:
        self.seconds, self.calls = 0.0, 0
        for name in ("reduce", "gather_logits"):
            setattr(tp, name, self._timed(getattr(tp, name)))

    def _timed(self, fn):  # type: ignore[no-untyped-def]
        def run(*args):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            out = fn(*args)
            self.seconds += time.perf_counter() - t0
            self.calls += 1
            return out

        return run


def decode(model, prompt: list[int], n: int) -> tuple[list[int], torch.Tensor, float]:  # type: ignore[no-untyped-def]
    """Greedy tokens, the prefill logits and the decode seconds."""
    cache = model.new_cache()
    ids = torch.tensor(prompt)
    out = model.forward(ids, torch.arange(len(prompt)), cache, all_logits=True)
    first = out.logits
    tok = int(first[-1].argmax())
    toks = [tok]
    t0 = time.perf_counter()
    for i in range(n - 1):
        logits = model.forward(torch.tensor([tok]), torch.tensor([len(prompt) + i]), cache).logits
        tok = int(logits[-1].argmax())
        toks.append(tok)
    return toks, first, time.perf_counter() - t0


def _allreduce_rank(rank: int, port: int, dim: int, iters: int, out: object) -> None:
    from torch import distributed as dist

    torch.set_num_threads(1)
    store = dist.TCPStore("127.0.0.1", port, 2, rank == 0, timeout=datetime.timedelta(seconds=60))
    pg = dist.ProcessGroupGloo(store, rank, 2, datetime.timedelta(seconds=60))
    x = torch.randn(1, dim)
    for _ in range(50):
        pg.allreduce([x]).wait()
    t0 = time.perf_counter()
    for _ in range(iters):
        pg.allreduce([x]).wait()
    if rank == 0:
        out.value = (time.perf_counter() - t0) / iters  # type: ignore[attr-defined]


def allreduce_latency(dim: int, iters: int = 2000) -> float:
    """Seconds per gloo all-reduce of a [1, dim] fp32 vector between two local processes."""
    import multiprocessing as mp
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    value = ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_allreduce_rank, args=(r, port, dim, iters, value)) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    return value.value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tp", type=int, default=2)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=2816)
    ap.add_argument("--vocab", type=int, default=32001)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cores = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = resolve(write_checkpoint(Path(tmp), a))
        prompt = torch.randint(0, a.vocab, (a.prompt_tokens,), generator=torch.Generator()).tolist()
        one = load_model(ckpt, "cpu", "float32", 512)
        toks1, logits1, s1 = decode(one, prompt, a.tokens)
        weight_mb = one.weight_bytes() / 2**20
        del one
        many = load_model(ckpt, "cpu", "float32", 512, tp=a.tp)  # workers get cores // tp threads
        torch.set_num_threads(max(1, cores // a.tp))
        try:
            decode(many, prompt, 4)  # warm-up
            timer = CollectiveTimer(many.tp)
            toksn, logitsn, sn = decode(many, prompt, a.tokens)
            steps = a.tokens - 1
            # Collectives during the timed decode steps only: drop the prefill's share.
            per_token_calls = 2 * a.layers + 2
            comm_decode = timer.seconds * (steps * per_token_calls) / timer.calls
        finally:
            many.shutdown()
            torch.set_num_threads(cores)
    latency = allreduce_latency(a.dim)
    result = {
        "model": f"dim {a.dim}, {a.layers} layers, {a.heads}/{a.kv_heads} heads, "
        f"ffn {a.hidden}, vocab {a.vocab} (odd split), fp32, {weight_mb:.0f} MiB",
        "cores": cores,
        "tp": a.tp,
        "greedy_tokens_equal": toks1 == toksn,
        "max_abs_logit_diff": float((logits1 - logitsn).abs().max()),
        "decode_tok_s_tp1": round((a.tokens - 1) / s1, 2),
        f"decode_tok_s_tp{a.tp}": round((a.tokens - 1) / sn, 2),
        "collectives_per_token": per_token_calls,
        "rank0_collective_ms_per_token": round(comm_decode / steps * 1000, 3),
        "share_of_decode_step": round(comm_decode / sn, 3),
        "isolated_gloo_allreduce_us": round(latency * 1e6, 1),
    }
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
