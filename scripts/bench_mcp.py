"""Benchmark MCP support.

    .venv/bin/python scripts/bench_mcp.py [--runs N] [--calls N]

1. TUI time to first frame with three stdio MCP servers configured vs none (goal: within 10%).
2. Overhead of one MCP call over stdio on top of the server's own work (goal: median < 5 ms):
   round trip of `noop` through McpTool.run minus the time the server reports it spent.
3. Session start until the tools are offered (McpManager.wait_started), beside each server's
   own startup time (spawn to tools listed, measured alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_tui import Pty, ServerProcess, first_frame, make_home  # noqa: E402

SERVERS = [
    ("t1", [sys.executable, "-m", "tests.fakes.mcp_server"]),
    ("t2", [sys.executable, "-m", "tests.fakes.mcp_server"]),
    ("time", [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]),
]


def servers_toml() -> str:
    out = []
    for name, argv in SERVERS:
        out.append(
            f'[[mcp_servers]]\nname = "{name}"\ncommand = {json.dumps(argv)}\n'
            f"cwd = {json.dumps(str(ROOT))}\n"
        )
    return "\n".join(out)


def ttff(url: str, runs: int, with_mcp: bool) -> list[float]:
    argv = [sys.executable, "-m", "vibe"]
    wall = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            home, work, env = make_home(Path(tmp), url)
            if with_mcp:
                with (home / "config.toml").open("a") as fh:
                    fh.write("\n" + servers_toml())
            term = Pty(argv, work, env)
            try:
                wall.append(term.wait(first_frame) - term.started)
            finally:
                term.close()
    return wall


async def call_overhead(calls: int) -> tuple[list[float], list[float]]:
    from tools.base import ToolContext, parse_args
    from vibe.mcp.config import McpStdio
    from vibe.mcp.manager import McpManager
    from vibe.mcp.tools import server_tools

    name, argv = SERVERS[0]
    manager = McpManager([McpStdio(name=name, command=argv, cwd=str(ROOT))], cwd=ROOT)
    await manager.wait_started()
    tool = server_tools(manager)[f"{name}_noop"]
    ctx = ToolContext(ROOT)
    total, overhead = [], []
    try:
        for i in range(calls + 20):
            began = time.perf_counter()
            result = await tool.run(parse_args(tool, {}), ctx)
            spent = time.perf_counter() - began
            if i >= 20:  # warm-up
                total.append(spent * 1000)
                overhead.append(spent * 1000 - float(result.text) / 1000)
    finally:
        await manager.aclose()
    return total, overhead


async def startup() -> tuple[float, dict[str, float]]:
    import importlib

    from vibe.mcp.config import McpStdio
    from vibe.mcp.manager import McpManager

    await asyncio.to_thread(importlib.import_module, "mcp.client.stdio")
    alone: dict[str, float] = {}
    for name, argv in SERVERS:
        manager = McpManager([McpStdio(name=name, command=argv, cwd=str(ROOT))], cwd=ROOT)
        await manager.wait_started()
        alone[name] = manager.servers[name].ready_s or float("nan")
        await manager.aclose()
    configs = [McpStdio(name=n, command=a, cwd=str(ROOT)) for n, a in SERVERS]
    manager = McpManager(configs, cwd=ROOT)
    began = time.perf_counter()
    await manager.wait_started()
    together = time.perf_counter() - began
    await manager.aclose()
    return together, alone


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with ServerProcess() as server:
        none = ttff(server.url, args.runs, False)
        three = ttff(server.url, args.runs, True)
    m0, m3 = statistics.median(none), statistics.median(three)
    print(f"TUI first frame, no MCP servers:     median {m0 * 1000:.0f} ms ({args.runs} runs)")
    print(
        f"TUI first frame, 3 stdio servers:    median {m3 * 1000:.0f} ms "
        f"({(m3 / m0 - 1) * 100:+.1f}%; goal within 10%)"
    )
    total, overhead = asyncio.run(call_overhead(args.calls))
    print(
        f"MCP call over stdio ({args.calls} calls): median round trip "
        f"{statistics.median(total):.2f} ms, overhead {statistics.median(overhead):.2f} ms "
        f"(p90 {sorted(overhead)[int(len(overhead) * 0.9)]:.2f} ms; goal median < 5 ms)"
    )
    together, alone = asyncio.run(startup())
    own = ", ".join(f"{n} {s * 1000:.0f} ms" for n, s in alone.items())
    print(f"session start → tools offered (3 servers): {together * 1000:.0f} ms; alone: {own}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
