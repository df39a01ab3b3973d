"""The bash tool against real processes: exit codes, timeouts, cancel, stdin, output caps."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tools.base import ToolContext, ToolError, parse_args
from tools.bash import BashTool


def _gone(pid: int) -> bool:
    """True once `pid` no longer runs (reaped, or a zombie whose parent never reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # the process vanished while we looked
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def _wait_gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        await asyncio.sleep(0.05)
    return _gone(pid)


async def run(command: str, tmp_path: Path, tool: BashTool | None = None, **ctx_kwargs):
    tool = tool or BashTool()
    args = parse_args(tool, {"command": command, **ctx_kwargs.pop("args", {})})
    return await tool.run(args, ToolContext(cwd=tmp_path, **ctx_kwargs))


@pytest.mark.asyncio
async def test_output_and_exit_code(tmp_path):
    result = await run("echo out; echo err >&2; exit 3", tmp_path)
    assert result.text.splitlines() == ["out", "err", "[exit code: 3]"]
    assert result.ok is False
    assert result.data["exit_code"] == 3
    ok = await run("pwd", tmp_path)
    assert ok.ok and ok.text.splitlines()[0] == str(tmp_path)
    assert ok.data["exit_code"] == 0


@pytest.mark.asyncio
async def test_runs_bash_non_interactively(tmp_path):
    result = await run(
        'echo "$CI $PAGER $GIT_PAGER $TERM $GIT_TERMINAL_PROMPT $DEBIAN_FRONTEND $NO_COLOR";'
        " [[ -n $BASH_VERSION ]] && echo bash; tty || true",
        tmp_path,
    )
    lines = result.text.splitlines()
    assert lines[0] == "1 cat cat dumb 0 noninteractive 1"
    assert lines[1] == "bash"
    assert lines[2] == "not a tty"


@pytest.mark.asyncio
async def test_stdin_is_closed(tmp_path):
    started = time.monotonic()
    result = await run("cat; read line; echo read=$?", tmp_path, args={"timeout": 20})
    assert time.monotonic() - started < 5
    assert result.text.splitlines() == ["read=1", "[exit code: 0]"]


@pytest.mark.asyncio
async def test_timeout_kills_the_whole_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    result = await run(
        f"sleep 60 & echo $! > {pidfile}; echo started; wait", tmp_path, args={"timeout": 0.5}
    )
    assert time.monotonic() - started < 4
    assert result.data["timed_out"] is True and result.ok is False
    assert "started" in result.text
    assert "[timed out after 0.5 s" in result.text
    assert await _wait_gone(int(pidfile.read_text()))


@pytest.mark.asyncio
async def test_default_timeout_comes_from_the_tool(tmp_path):
    result = await run("sleep 30", tmp_path, tool=BashTool(default_timeout=0.3))
    assert result.data["timed_out"] is True


@pytest.mark.asyncio
async def test_group_survives_term_gets_killed(tmp_path):
    pidfile = tmp_path / "child.pid"
    command = f"bash -c 'trap \"\" TERM; echo $$ > {pidfile}; sleep 60' & wait"
    started = time.monotonic()
    result = await run(command, tmp_path, args={"timeout": 0.5})
    assert time.monotonic() - started < 5
    assert result.data["timed_out"]
    assert await _wait_gone(int(pidfile.read_text()))


@pytest.mark.asyncio
async def test_cancel_event_kills(tmp_path):
    cancel = asyncio.Event()
    pidfile = tmp_path / "child.pid"
    task = asyncio.create_task(
        run(f"sleep 60 & echo $! > {pidfile}; wait", tmp_path, cancel=cancel)
    )
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.05)
    started = time.monotonic()
    cancel.set()
    result = await task
    assert time.monotonic() - started < 3
    assert result.data["cancelled"] is True and result.data["timed_out"] is False
    assert "[cancelled" in result.text
    assert await _wait_gone(int(pidfile.read_text()))


@pytest.mark.asyncio
async def test_task_cancellation_kills_the_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    task = asyncio.create_task(run(f"sleep 60 & echo $! > {pidfile}; wait", tmp_path))
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_gone(int(pidfile.read_text()))


@pytest.mark.asyncio
async def test_large_output_keeps_head_and_tail(tmp_path):
    chunks: list[str] = []
    result = await run("seq -f 'line %09g' 1 350000", tmp_path, on_output=chunks.append)
    total = result.data["output_bytes"]
    assert total == 350000 * 15  # 5.25 MB
    assert len(result.text) < 32_000
    lines = result.text.splitlines()
    assert lines[0] == "line 000000001"
    assert lines[-2] == "line 000350000"
    assert lines[-1] == "[exit code: 0]"
    omitted = result.data["omitted_bytes"]
    assert f"[... {omitted} bytes omitted ...]" in result.text
    kept = [x for x in lines if x.startswith("line ")]
    assert sum(len(x) + 1 for x in kept) + omitted == total  # nothing lost silently, cut at lines
    assert "".join(chunks).count("\n") == 350000  # the live stream sees everything


@pytest.mark.asyncio
async def test_background_child_holding_the_pipe_does_not_block(tmp_path):
    started = time.monotonic()
    result = await run("sleep 5 & echo done", tmp_path)
    assert time.monotonic() - started < 3
    assert result.text.splitlines() == ["done", "[exit code: 0]"]


@pytest.mark.asyncio
async def test_empty_command_and_no_output(tmp_path):
    with pytest.raises(ToolError, match="empty"):
        await run("   ", tmp_path)
    result = await run("true", tmp_path)
    assert result.text == "(no output)\n[exit code: 0]"


@pytest.mark.asyncio
async def test_colour_codes_are_stripped_and_signals_reported(tmp_path):
    result = await run(r"printf '\033[31mred\033[0m\n'; kill -9 $$", tmp_path)
    assert result.text.splitlines() == ["red", "[killed by signal 9]"]
    assert os.name == "posix"


async def test_api_keys_are_not_visible_to_commands(tmp_path, monkeypatch):
    from tools.base import ToolContext
    from tools.bash import BashTool

    monkeypatch.setenv("MISTRAL_API_KEY", "sk-secret-value-123")
    monkeypatch.setenv("HARMLESS_VAR", "visible")
    tool = BashTool()
    result = await tool.run(
        tool.Args(command="echo key=$MISTRAL_API_KEY var=$HARMLESS_VAR"), ToolContext(cwd=tmp_path)
    )
    assert "sk-secret-value-123" not in result.text
    assert "var=visible" in result.text
