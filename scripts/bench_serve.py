"""Benchmark `vibe serve`: N concurrent streaming chat clients (default 1, 4, 8, 16).

Starts `vibe serve --model MODEL` on a free loopback port (or uses --url), then for each N runs
N clients at once, each streaming one chat completion of --max-tokens tokens (greedy, distinct
prompts), and reports aggregate tokens/s (completion tokens the responses report / wall time),
time to first token p50/p95 and the mean per-stream tokens/s (after the first token).

    python scripts/bench_serve.py --model smollm2 --max-tokens 64 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


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
            elif first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2")
    p.add_argument("--url", default=None, help="an already running server's /v1 URL")
    p.add_argument("--clients", default="1,4,8,16")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--max-context", type=int, default=2048)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    levels = [int(x) for x in args.clients.split(",")]
    results = []

    def run(url: str) -> None:
        asyncio.run(level(url, 1, 4))  # warm-up
        for n in levels:
            row = asyncio.run(level(url, n, args.max_tokens))
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

        extra = ("--max-batch", str(max(levels)), "--max-queue", str(max(levels)),
                 "--max-context", str(args.max_context))  # fmt: skip
        with serve("--model", args.model, *extra, timeout=600) as s:
            run(s.v1)
    if args.json:
        print(json.dumps({"model": args.model, "max_tokens": args.max_tokens, "levels": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
