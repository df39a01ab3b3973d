"""Benchmark `vibe serve`: N concurrent streaming clients (default 1, 4, 8, 16).

Starts `vibe serve --model MODEL` on a free loopback port (or uses --url), then for each N runs
N clients at once, each streaming one chat completion of --max-tokens tokens (greedy, distinct
prompts, `ignore_eos`), and reports aggregate tokens/s (the completion tokens each response
reports / wall time), time to first token p50/p95 and the mean per-stream tokens/s (after the
first token).

With --vs-llamaserver it also starts llama.cpp's `llama-server -np N -c N*CTX` on the same GGUF
file for each N (built once by scripts/llamacpp.py) and alternates the same clients between the
two servers, --rounds times (medians), printing one table: aggregate tok/s of both, their
ratio, TTFT p50/p95 of both and our aggregate over our single-stream rate.

    python scripts/bench_serve.py --model smollm2 --max-tokens 64 [--json]
    python scripts/bench_serve.py --model smollm2 --vs-llamaserver --rounds 3 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METRICS = ("aggregate_tok_s", "ttft_p50_s", "ttft_p95_s", "per_stream_tok_s", "tokens")


async def one_stream(client: httpx.AsyncClient, url: str, prompt: str, n: int) -> dict:
    body = {
        "messages": [{"role": "user", "content": prompt}], "max_tokens": n, "temperature": 0,
        "stream": True, "stream_options": {"include_usage": True}, "ignore_eos": True,
    }  # fmt: skip
    t0 = time.perf_counter()
    first, tokens = None, 0
    async with client.stream("POST", url + "/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            elif chunk.get("timings") and not tokens:  # llama-server without a usage chunk
                tokens = chunk["timings"].get("predicted_n", 0)
            choices = chunk.get("choices") or []
            if first is None and choices and (choices[0].get("delta") or {}).get("content"):
                first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    first = first if first is not None else total
    rate = (tokens - 1) / (total - first) if tokens > 1 and total > first else 0.0
    return {"ttft": first, "tokens": tokens, "total": total, "stream_tok_s": rate}


async def level(url: str, n: int, max_tokens: int) -> dict:
    async with httpx.AsyncClient(timeout=600) as client:
        t0 = time.perf_counter()
        rows = await asyncio.gather(
            *(one_stream(client, url, f"Client {i}: tell me a story about the sea.", max_tokens)
              for i in range(n))
        )  # fmt: skip
        wall = time.perf_counter() - t0
    ttfts = sorted(r["ttft"] for r in rows)
    return {
        "clients": n,
        "aggregate_tok_s": round(sum(r["tokens"] for r in rows) / wall, 2),
        "ttft_p50_s": round(statistics.median(ttfts), 3),
        "ttft_p95_s": round(ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))], 3),
        "per_stream_tok_s": round(statistics.mean(r["stream_tok_s"] for r in rows), 2),
        "tokens": sum(r["tokens"] for r in rows),
    }


def measure(url: str, n: int, max_tokens: int) -> dict:
    return asyncio.run(level(url, n, max_tokens))


def medians(rows: list[dict]) -> dict:
    return {k: round(statistics.median(r[k] for r in rows), 3) for k in METRICS}


def ours_args(args: argparse.Namespace, max_batch: int) -> list[str]:
    extra = ["--model", args.model, "--max-batch", str(max_batch), "--max-queue",
             str(max_batch), "--max-context", str(args.max_context)]  # fmt: skip
    return extra + (["--threads", str(args.threads)] if args.threads else [])


def plain(args: argparse.Namespace, levels: list[int]) -> list[dict]:
    results: list[dict] = []

    def run(url: str) -> None:
        measure(url, 1, 4)  # warm-up
        for n in levels:
            row = measure(url, n, args.max_tokens)
            results.append(row)
            if not args.json:
                print(
                    f"{n:>3} clients: aggregate {row['aggregate_tok_s']:8.2f} tok/s, TTFT p50 "
                    f"{row['ttft_p50_s']:.3f} s p95 {row['ttft_p95_s']:.3f} s, per stream "
                    f"{row['per_stream_tok_s']:.2f} tok/s",
                    flush=True,
                )

    if args.url:
        run(args.url)
    else:
        from tests.fakes.serve_proc import serve

        with serve(*ours_args(args, max(levels)), timeout=600) as s:
            run(s.v1)
    return results


def vs_llamaserver(args: argparse.Namespace, levels: list[int]) -> list[dict]:
    """Ours and llama-server on the same GGUF, alternated per round at each N."""
    from engine.checkpoint import resolve
    from scripts.llamacpp import ensure_llama_server, llama_server_cmd
    from tests.fakes.serve_proc import free_port, http_process, serve

    gguf = resolve(args.model).gguf
    if gguf is None:
        raise SystemExit(f"error: --vs-llamaserver needs a .gguf model; {args.model} is not one")
    binary = ensure_llama_server()
    threads = args.threads or os.cpu_count() or 1
    levels = sorted({1, *levels})  # ours/ours-single needs the single-stream rate
    rows: list[dict] = []
    with serve(*ours_args(args, max(levels)), timeout=600) as ours:
        measure(ours.v1, 1, 4)  # warm-up
        for n in levels:
            port = free_port()
            cmd = llama_server_cmd(binary, gguf, n, args.max_context, threads, port)
            with http_process(cmd, port, timeout=300) as theirs:
                measure(theirs.v1, 1, 4)
                mine, other = [], []
                for _ in range(args.rounds):
                    mine.append(measure(ours.v1, n, args.max_tokens))
                    other.append(measure(theirs.v1, n, args.max_tokens))
            a, b = medians(mine), medians(other)
            row = {"clients": n, **{f"ours_{k}": v for k, v in a.items()},
                   **{f"llamaserver_{k}": v for k, v in b.items()}}  # fmt: skip
            base = rows[0]["ours_aggregate_tok_s"] if rows else a["aggregate_tok_s"]
            row["ratio"] = round(a["aggregate_tok_s"] / b["aggregate_tok_s"], 2)
            row["ours_over_single"] = round(a["aggregate_tok_s"] / base, 2)
            rows.append(row)
            if not args.json:
                if len(rows) == 1:
                    print(f"# {gguf.name}, {args.max_tokens} tokens per stream, llama-server -t "
                          f"{threads}, medians of {args.rounds} alternated rounds")  # fmt: skip
                    print(table_header())
                print(table_row(row), flush=True)
    return rows


def table_header() -> str:
    return (
        "|  N | ours tok/s | llama-server tok/s | ratio | ours TTFT p50/p95 s "
        "| llama-server TTFT p50/p95 s | ours/ours-single |\n"
        "|---:|---:|---:|---:|---:|---:|---:|"
    )


def table_row(r: dict) -> str:
    return (
        f"| {r['clients']:>2} | {r['ours_aggregate_tok_s']:.1f} | "
        f"{r['llamaserver_aggregate_tok_s']:.1f} | {r['ratio']:.2f}x | "
        f"{r['ours_ttft_p50_s']:.3f} / {r['ours_ttft_p95_s']:.3f} | "
        f"{r['llamaserver_ttft_p50_s']:.3f} / {r['llamaserver_ttft_p95_s']:.3f} | "
        f"{r['ours_over_single']:.2f}x |"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2")
    p.add_argument("--url", default=None, help="an already running server's /v1 URL")
    p.add_argument("--clients", default="1,4,8,16")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--max-context", type=int, default=2048, help="context per sequence")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both servers (default: vibe serve's own; llama-server: "
                   "all cores)")  # fmt: skip
    p.add_argument("--vs-llamaserver", action="store_true",
                   help="alternate with llama.cpp's llama-server -np N on the same GGUF")  # fmt: skip
    p.add_argument("--rounds", type=int, default=1, help="alternated rounds per N (medians)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    levels = [int(x) for x in args.clients.split(",")]
    if args.vs_llamaserver and args.url:
        p.error("--vs-llamaserver starts both servers itself; drop --url")
    rows = vs_llamaserver(args, levels) if args.vs_llamaserver else plain(args, levels)
    if args.json:
        print(json.dumps({"model": args.model, "max_tokens": args.max_tokens, "levels": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
