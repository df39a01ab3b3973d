"""`!cmd`: run a shell command directly (not through the model) and capture its output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

MAX_OUTPUT = 50_000


@dataclass(frozen=True)
class ShellResult:
    command: str
    output: str
    exit_code: int | None  # None: killed (timeout or interrupted)


async def run_shell(command: str, cwd: Path, timeout: float = 120.0) -> ShellResult:
    """Run in its own process group so a timeout or Esc kills the whole tree."""
    proc = await asyncio.create_subprocess_shell(
        command,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        return ShellResult(command, f"[killed after {timeout:.0f}s]", None)
    text = out.decode("utf-8", errors="replace")
    if len(text) > MAX_OUTPUT:
        text = text[:MAX_OUTPUT] + f"\n[output truncated at {MAX_OUTPUT} characters]"
    return ShellResult(command, text.rstrip("\n"), proc.returncode)
