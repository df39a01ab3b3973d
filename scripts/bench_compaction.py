"""Benchmark: time to compact a 168k-token history, excluding model time.

Builds a realistic agent session (read_file outputs, bash logs, edits, todo updates, user
messages) of about 168,000 estimated tokens, then times Compactor.compact() against an in-process
model that answers instantly: accounting, the summary request (transcript rendering) and the
rebuilt context. Goal: under 200 ms. Usage: python scripts/bench_compaction.py [--tokens N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vibe.agent.compaction import Compactor
from vibe.agent.tokens import ContextMeter, estimate_tokens
from vibe.config.schema import ModelConfig
from vibe.messages import Message, ToolCall, Usage
from vibe.providers.base import ChatRequest, Chunk, TextChunk, UsageChunk

SUMMARY = "## Goal\nRefactor the parser.\n\n## Next steps\n1. Run the tests.\n" * 20


class InstantModel:
    """Answers every request at once with a fixed summary (no model time)."""

    name = "instant"

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        yield TextChunk(SUMMARY)
        yield UsageChunk(Usage(168_000, 500))

    async def aclose(self) -> None:
        return None


def history(target: int) -> list[Message]:
    source = (Path(__file__).resolve().parents[1] / "vibe" / "agent" / "loop.py").read_text()
    lines = source.splitlines()
    messages = [
        Message("system", "You are vibe, a coding agent. " * 200),
        Message("user", "Refactor the parser. Never touch file src/legacy.py."),
    ]
    turn = 0
    while estimate_tokens(messages) < target:
        turn += 1
        start = (turn * 37) % max(1, len(lines) - 120)
        body = "".join(
            f"{i:6}\t{line}\n" for i, line in enumerate(lines[start : start + 120], start)
        )
        todos = [
            {"content": f"step {k}", "status": "completed" if k < turn else "pending"}
            for k in range(1, 8)
        ]
        calls = [
            ("read_file", {"path": f"src/mod{turn}.py"}, body),
            ("bash", {"command": "pytest -q"}, "F" * 40 + f"\n{turn} failed, 12 passed\n" * 20),
            (
                "edit",
                {"path": f"src/mod{turn}.py", "old_string": "x = 1", "new_string": "x = 2"},
                "--- a\n+++ b\n@@ -1 +1 @@\n-x = 1\n+x = 2\n",
            ),
            ("todo", {"todos": todos}, "Todos updated"),
        ]
        for k, (name, args, out) in enumerate(calls):
            cid = f"c{turn}_{k}"
            messages.append(
                Message(
                    "assistant",
                    f"Next: {name}.",
                    tool_calls=[ToolCall(cid, name, json.dumps(args))],
                )
            )
            messages.append(Message("tool", out, tool_call_id=cid, name=name))
        if turn % 3 == 0:
            messages.append(Message("user", f"Good. Now module {turn + 1}; keep the API stable."))
    return messages


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=168_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    messages = history(args.tokens)
    model = ModelConfig(name="m", provider="p", auto_compact_threshold=args.tokens)
    compactor = Compactor(InstantModel(), model)
    meter = ContextMeter()
    times, result = [], None
    for _ in range(args.runs):
        started = time.perf_counter()
        before = meter.tokens(messages)  # the accounting the loop does before each call
        if compactor.needs_compaction(before):
            result = await compactor.compact(messages, tokens_before=before)
        times.append((time.perf_counter() - started) * 1000)
    assert result is not None
    chars = sum(len(m.content) for m in messages)
    print(f"history: {len(messages)} messages, {chars / 1e6:.2f} MB, {before:,} estimated tokens")
    print(f"compacted: {result.tokens_before:,} -> {result.tokens_after:,} tokens")
    print(
        f"compaction time (no model time), {args.runs} runs: median {statistics.median(times):.1f} ms,"
        f" min {min(times):.1f} ms, max {max(times):.1f} ms (goal < 200 ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
