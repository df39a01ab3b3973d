"""An MCP server written with the official SDK (MCPServer, the SDK's FastMCP), for the faults
real servers do not show on demand: a crash mid-call, a hang, a slow start, hundreds of tools,
a bearer-checked streamable-HTTP endpoint, state kept across calls.

    python -m tests.fakes.mcp_server [--slow-start S] [--many N] [--http PORT --token T]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from mcp.server.mcpserver import Image, MCPServer

COUNTER = {"calls": 0}


def build(many: int = 0) -> MCPServer:
    server = MCPServer("vibe-test", instructions="Test server for vibe.")

    @server.tool(description="Echo the text back.")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Count calls on this connection: proves the process is kept.")
    def counter() -> str:
        COUNTER["calls"] += 1
        return f"count={COUNTER['calls']} pid={os.getpid()}"

    @server.tool(description="Add two numbers (structured output).")
    def add(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b}

    @server.tool(description="Sleep for a while (a hang, for the tool timeout).")
    async def sleep(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "slept"

    @server.tool(description="Exit the server process in the middle of the call.")
    def crash() -> str:
        sys.stdout.flush()
        os._exit(3)

    @server.tool(description="Always fails.")
    def fail() -> str:
        raise ValueError("this tool always fails")

    @server.tool(description="A tiny PNG image.")
    def picture() -> Image:
        png = bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
        )
        return Image(data=png, format="png")

    @server.tool(description="Time spent in the server for a no-op, in microseconds.")
    def noop() -> str:
        started = time.perf_counter()
        return f"{(time.perf_counter() - started) * 1e6:.1f}"

    for i in range(many):

        def make(i: int = i):
            def tool(x: str = "") -> str:
                return f"tool {i}: {x}"

            return tool

        server.add_tool(make(), name=f"tool_{i:03d}", description=f"Generated tool number {i}.")
    return server


def serve_http(server: MCPServer, port: int, token: str) -> None:
    import uvicorn
    from starlette.responses import PlainTextResponse

    app = server.streamable_http_app(host="127.0.0.1")
    inner = app

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization", b"").decode() != f"Bearer {token}":
                await PlainTextResponse("unauthorized", status_code=401)(scope, receive, send)
                return
        await inner(scope, receive, send)

    uvicorn.run(guarded, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow-start", type=float, default=0.0)
    parser.add_argument("--many", type=int, default=0)
    parser.add_argument("--http", type=int, default=0)
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    if args.slow_start:
        time.sleep(args.slow_start)
    server = build(args.many)
    if args.http:
        serve_http(server, args.http, args.token)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
