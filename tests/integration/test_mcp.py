"""The MCP manager and adapter tools against real servers: mcp-server-time and mcp-server-git
(PyPI), @modelcontextprotocol/server-everything (npx, when node is here), and the SDK-written
fault server in tests/fakes/mcp_server.py (crash, hang, slow start, 300 tools, HTTP + bearer)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from tools.base import ToolContext, ToolError, parse_args, tool_schema
from vibe.mcp.config import McpHttp, McpStdio
from vibe.mcp.manager import McpManager
from vibe.mcp.tools import server_tools

ROOT = Path(__file__).resolve().parents[2]
FAKE = [sys.executable, "-m", "tests.fakes.mcp_server"]


def fake(name: str = "t", *extra: str, **kw) -> McpStdio:
    return McpStdio(name=name, command=[*FAKE, *extra], cwd=str(ROOT), **kw)


async def call(tools, name: str, **arguments):
    tool = tools[name]
    return await tool.run(parse_args(tool, arguments), ToolContext(Path.cwd()))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def started(*servers, **kw) -> McpManager:
    manager = McpManager(list(servers), cwd=ROOT, log_dir=kw.pop("log_dir", None), **kw)
    manager.notices = []  # type: ignore[attr-defined]
    manager.set_notice_listener(manager.notices.append)  # type: ignore[attr-defined]
    await manager.wait_started()
    return manager


async def test_fault_server_results_state_timeout_crash_restart_and_cleanup(tmp_path):
    manager = await started(fake(tool_timeout_sec=1.5, prompt="Prefer t_echo."), log_dir=tmp_path)
    try:
        tools = server_tools(manager)
        assert {"t_echo", "t_counter", "t_add", "t_sleep", "t_crash"} <= set(tools)
        schema = tool_schema(tools["t_add"])["function"]
        assert schema["parameters"]["required"] == ["a", "b"]  # passed through
        assert schema["description"].endswith("Prefer t_echo.")
        assert (await call(tools, "t_echo", text="héllo")).text == "héllo"
        # one connection for the whole session: the state survives between calls
        first = (await call(tools, "t_counter")).text
        second = (await call(tools, "t_counter")).text
        assert first.startswith("count=1 ") and second.startswith("count=2 ")
        pid = int(second.split("pid=")[1])
        assert json.loads((await call(tools, "t_add", a=2, b=3)).text) == {"sum": 5}
        failed = await call(tools, "t_fail")
        assert not failed.ok and "fail" in failed.text  # isError: a tool error
        assert "image content (image/png" in (await call(tools, "t_picture")).text
        # a hang is cancelled at tool_timeout_sec and reported; the connection stays usable
        began = time.monotonic()
        with pytest.raises(ToolError, match=r"timed out after 1\.5 s"):
            await call(tools, "t_sleep", seconds=30)
        assert time.monotonic() - began < 5
        assert (await call(tools, "t_counter")).text.startswith("count=3 ")
        # a crash mid-call is an error for the model; the next call restarts it once
        with pytest.raises(ToolError, match=r"stopped during the call.*restarted on the next"):
            await call(tools, "t_crash")
        again = (await call(tools, "t_counter")).text
        assert again.startswith("count=1 ") and int(again.split("pid=")[1]) != pid
        assert any("restarted" in n for n in manager.notices)  # type: ignore[attr-defined]
        new_pid = int(again.split("pid=")[1])
        with pytest.raises(ToolError, match="will not be restarted"):
            await call(tools, "t_crash")
        with pytest.raises(ToolError, match="not available"):
            await call(tools, "t_counter")
        assert not alive(pid)
    finally:
        await manager.aclose()
    assert not alive(new_pid)


async def test_processes_are_gone_after_close():
    manager = await started(fake("a"), fake("b"))
    tools = server_tools(manager)
    pids = [int((await call(tools, f"{n}_counter")).text.split("pid=")[1]) for n in "ab"]
    assert all(alive(p) for p in pids)
    await manager.aclose()
    assert not any(alive(p) for p in pids)


async def test_slow_and_missing_servers_fail_alone_and_are_reported_once():
    began = time.monotonic()
    manager = await started(
        fake("slow", "--slow-start", "20", startup_timeout_sec=1.5),
        McpStdio(name="missing", command=["no-such-mcp-server-xyz"]),
        fake("ok"),
    )
    try:
        assert time.monotonic() - began < 10
        states = manager.servers
        assert states["slow"].status == "failed" and "startup_timeout_sec" in states["slow"].error
        assert states["missing"].status == "failed" and "not found" in states["missing"].error
        assert states["ok"].status == "ready"
        notices = manager.notices  # type: ignore[attr-defined]
        assert len(notices) == 2 and all("did not start" in n for n in notices)
        assert all(n.startswith("ok_") for n in server_tools(manager))
    finally:
        await manager.aclose()


async def test_300_tools_and_disabled_tools():
    manager = await started(fake("many", "--many", "300", disabled_tools=["tool_29*", "echo"]))
    try:
        tools = server_tools(manager)
        generated = [n for n in tools if n.startswith("many_tool_")]
        assert len(generated) == 290 and "many_echo" not in tools
        assert (await call(tools, "many_tool_123", x="y")).text == "tool 123: y"
        schemas = [tool_schema(t) for t in tools.values()]
        assert len(json.dumps(schemas)) > 30_000  # counted by the context meter (see e2e)
    finally:
        await manager.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server():
    port = _free_port()
    proc = subprocess.Popen(
        [*FAKE, "--http", str(port), "--token", "tok-123456"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(10)


async def test_streamable_http_with_bearer_from_api_key_env(http_server):
    keys = {"SRV_TOKEN": "tok-123456", "WRONG": "nope"}
    good = McpHttp(name="web", transport="http", url=http_server, api_key_env="SRV_TOKEN")
    bad = McpHttp(name="bad", transport="streamable-http", url=http_server, api_key_env="WRONG")
    manager = await started(good, bad, key_lookup=keys.get)
    try:
        assert manager.servers["web"].status == "ready"
        assert manager.servers["bad"].status == "failed"
        assert "401" in manager.servers["bad"].error
        tools = server_tools(manager)
        a = (await call(tools, "web_counter")).text
        b = (await call(tools, "web_counter")).text
        assert a.startswith("count=1") and b.startswith("count=2")  # one session throughout
    finally:
        await manager.aclose()


async def test_stdio_env_is_scrubbed_plus_the_server_env(monkeypatch):
    from tools._proc import shell_env

    monkeypatch.setenv("SOME_API_KEY", "secret-value-123")
    monkeypatch.setenv("PLAIN_SETTING", "visible")
    script = "import os,json,sys; print(json.dumps(dict(os.environ)), file=sys.stderr)"
    server = McpStdio(
        name="envprobe",
        command=[sys.executable, "-c", script + "; import tests.fakes.mcp_server as m; m.main()"],
        cwd=str(ROOT),
        env={"GIVEN": "yes"},
    )
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"vibe-mcp-env-{os.getpid()}"
    manager = await started(server, env=shell_env(), log_dir=logs)
    await manager.aclose()
    seen = json.loads((logs / "mcp-envprobe.log").read_text().splitlines()[0])
    shutil.rmtree(logs, ignore_errors=True)
    assert seen["GIVEN"] == "yes" and seen["PLAIN_SETTING"] == "visible"
    assert "SOME_API_KEY" not in seen


@pytest.mark.skipif(shutil.which("mcp-server-time") is None, reason="mcp-server-time missing")
async def test_real_time_and_git_servers(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (repo / "a.txt").write_text("hello\n")
    servers = [McpStdio(name="time", command="mcp-server-time --local-timezone UTC")]
    if shutil.which("mcp-server-git"):
        servers.append(McpStdio(name="git", command=["mcp-server-git", "--repository", str(repo)]))
    manager = await started(*servers)
    try:
        tools = server_tools(manager)
        now = json.loads((await call(tools, "time_get_current_time", timezone="UTC")).text)
        assert now["timezone"] == "UTC" and now["datetime"][:4].isdigit()
        bad = await call(tools, "time_get_current_time", timezone="Not/AZone")
        assert not bad.ok
        if "git_git_status" in tools:
            status = await call(tools, "git_git_status", repo_path=str(repo))
            assert "a.txt" in status.text
    finally:
        await manager.aclose()


def _npx_everything() -> str | None:
    if shutil.which("npx") is None:
        return "npx is not installed"
    probe = subprocess.run(
        ["npx", "--no-install", "-y", "@modelcontextprotocol/server-everything", "--help"],
        capture_output=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    if probe.returncode != 0 and b"could not determine executable" in probe.stderr.lower():
        return "@modelcontextprotocol/server-everything is not in the npx cache (offline)"
    return None


async def test_everything_server_through_npx():
    reason = await asyncio.to_thread(_npx_everything)
    if reason:
        pytest.skip(reason)
    server = McpStdio(
        name="ev",
        command=["npx", "-y", "@modelcontextprotocol/server-everything"],
        startup_timeout_sec=60,
    )
    manager = await started(server)
    try:
        if manager.servers["ev"].status != "ready":
            pytest.skip(f"server-everything did not start: {manager.servers['ev'].error}")
        tools = server_tools(manager)
        assert (await call(tools, "ev_echo", message="hi")).text.endswith("hi")
    finally:
        await manager.aclose()
