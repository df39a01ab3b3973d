"""Time large tool-call arguments through the whole streaming path: httpx body -> SSE decoder
-> JSON -> ChatStreamParser -> ToolCallChunk. The body is served in-process (an httpx mock
transport in 64 KiB reads), so only our code is measured.

  python scripts/bench_sse.py                      # 10 MB in one event, 5 MB in 16-byte pieces
  python scripts/bench_sse.py --one-mb 10 --frag-mb 5 --frag-bytes 1 --limit 60

Cases: `one event` puts the whole argument into a single `data:` line (a server that sends
each call whole, like Mistral); `fragments` streams it in small pieces, one event each (vLLM,
OpenAI). Before the linear-time decoder and fragment lists, these took 34 s and > 280 s. Each
case stops after --limit seconds and is reported as "> LIMIT s"."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from vibe.config.schema import ModelConfig, ProviderConfig
from vibe.messages import Message
from vibe.providers.base import ChatRequest, ToolCallChunk
from vibe.providers.openai_compat import OpenAICompatProvider

READ = 64 * 1024  # bytes per network read, as httpx typically hands them over


def _event(delta: dict, finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return "data: " + json.dumps({"choices": [choice]}) + "\n\n"


def one_event(size: int) -> Iterator[str]:
    call = {"index": 0, "id": "call1", "function": {"name": "write_file", "arguments": "x" * size}}
    yield _event({"tool_calls": [call]})
    yield _event({}, "tool_calls")
    yield "data: [DONE]\n\n"


def fragments(size: int, piece: int) -> Iterator[str]:
    first = {"index": 0, "id": "call1", "function": {"name": "write_file"}}
    yield _event({"tool_calls": [first]})
    frag = _event({"tool_calls": [{"index": 0, "function": {"arguments": "x" * piece}}]})
    for _ in range(size // piece):  # the same event text each time: only our side is timed
        yield frag
    yield _event({}, "tool_calls")
    yield "data: [DONE]\n\n"


async def _reads(events: Iterator[str]) -> AsyncIterator[bytes]:
    buf = bytearray()
    for text in events:
        buf += text.encode()
        while len(buf) >= READ:
            yield bytes(buf[:READ])
            del buf[:READ]
    if buf:
        yield bytes(buf)


async def run_case(make_events, expect: int) -> float:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=_reads(make_events())
        )

    provider = OpenAICompatProvider(
        ProviderConfig(name="bench", api_base="http://bench.invalid/v1"),
        ModelConfig(name="m", provider="bench"),
        transport=httpx.MockTransport(handler),
    )
    request = ChatRequest(model="m", messages=[Message("user", "go")])
    start = time.perf_counter()
    try:
        calls = [c async for c in provider.stream(request) if isinstance(c, ToolCallChunk)]
    finally:
        await provider.aclose()
    elapsed = time.perf_counter() - start
    got = len(calls[0].call.arguments) if calls else 0
    if got != expect:
        raise SystemExit(f"wrong result: {got} argument bytes, expected {expect}")
    return elapsed


class _Limit(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Limit


def timed(label: str, make_events, expect: int, limit: float) -> None:
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        elapsed = asyncio.run(run_case(make_events, expect))
        print(f"{label:<44} {elapsed:8.2f} s", flush=True)
    except _Limit:
        print(f"{label:<44} > {limit:g} s (stopped)", flush=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--one-mb", type=float, default=10, help="MB in one event (0: skip)")
    p.add_argument("--frag-mb", type=float, default=5, help="MB in fragments (0: skip)")
    p.add_argument("--frag-bytes", type=int, default=16, help="bytes per fragment")
    p.add_argument("--limit", type=float, default=120, help="seconds before a case is stopped")
    args = p.parse_args()
    if args.one_mb:
        size = int(args.one_mb * 1_000_000)
        timed(f"{args.one_mb:g} MB argument in one SSE event", lambda: one_event(size), size,
              args.limit)  # fmt: skip
    if args.frag_mb:
        piece = args.frag_bytes
        size = int(args.frag_mb * 1_000_000) // piece * piece
        label = f"{args.frag_mb:g} MB argument in {piece}-byte fragments"
        timed(label, lambda: fragments(size, piece), size, args.limit)


if __name__ == "__main__":
    main()
