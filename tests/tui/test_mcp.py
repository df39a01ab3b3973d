"""Pilot test of MCP in the TUI: servers start in the background after the first frame, a
failure is a notification, /mcp lists status, errors and tools, a call asks for approval."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vibe.tui.widgets.messages import Notice

from .conftest import approval_open, scripted_app, texts, wait_for

pytest.importorskip("mcp")

ROOT = Path(__file__).resolve().parents[2]


async def test_mcp_command_lists_servers_and_a_call_asks(home, workdir):
    with (home / "config.toml").open("a") as fh:
        fh.write(
            f"""
[[mcp_servers]]
name = "t"
command = {json.dumps(sys.executable)}
args = ["-m", "tests.fakes.mcp_server"]
cwd = {json.dumps(str(ROOT))}

[[mcp_servers]]
name = "gone"
command = "no-such-mcp-xyz"
"""
        )
    script = [{"tool_calls": [{"name": "t_echo", "arguments": {"text": "hey"}}]}, {"text": "ok"}]
    app, provider = scripted_app(home, workdir, script)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        mcp = app.runtime.mcp
        await wait_for(pilot, lambda: not mcp.manager.starting, timeout=20)
        await app.submit("/mcp")
        await wait_for(pilot, lambda: any("MCP servers" in t for t in texts(app, Notice)))
        listing = next(t for t in texts(app, Notice) if "MCP servers" in t)
        assert "t " in listing and "ready" in listing and "echo" in listing
        assert "gone" in listing and "failed" in listing and "not found" in listing
        await app.submit("call it")
        await wait_for(pilot, lambda: approval_open(app), timeout=10)
        await pilot.press("enter")  # allow once
        await wait_for(pilot, lambda: len(provider.requests) == 2 and not app.busy)
        assert "t_echo" in {t["function"]["name"] for t in provider.requests[0].tools}
        assert provider.requests[1].messages[-1].content == "hey"
    assert mcp.manager.servers["t"].status == "stopped"  # closed with the app
