"""Process plumbing for bash: a new session per command, bounded head+tail capture, group kills."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

# Variables that make tools behave as in CI: no pagers, prompts, colours or editors.
NON_INTERACTIVE_ENV = {
    "CI": "1",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "MANPAGER": "cat",
    "SYSTEMD_PAGER": "",
    "TERM": "dumb",
    "NO_COLOR": "1",
    "CLICOLOR": "0",
    "FORCE_COLOR": "0",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": "true",
    "EDITOR": "true",
    "VISUAL": "true",
    "DEBIAN_FRONTEND": "noninteractive",
    "PIP_NO_INPUT": "1",
    "PYTHONUNBUFFERED": "1",
}

KILL_GRACE_S = 1.0  # between SIGTERM and SIGKILL
DRAIN_GRACE_S = 0.5  # how long to keep reading after the shell exited (background children)


class HeadTail:
    """Keeps the first `head` and last `tail` bytes of a stream and counts what fell between."""

    def __init__(self, cap: int) -> None:
        self.head_cap = cap // 2
        self.tail_cap = cap - self.head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            # Trim lazily (amortised O(1)); memory stays below 2 * tail_cap.
            if len(self.tail) > 2 * self.tail_cap:
                del self.tail[: len(self.tail) - self.tail_cap]

    def render(self) -> tuple[str, int]:
        """The kept text (cut at line boundaries when truncated) and the omitted byte count."""
        tail = bytes(self.tail[-self.tail_cap :]) if self.tail_cap else b""
        head = bytes(self.head)
        omitted = self.total - len(head) - len(tail)
        if omitted <= 0:
            return (head + tail).decode("utf-8", errors="replace"), 0
        cut = head.rfind(b"\n")
        if cut >= len(head) * 3 // 4:
            omitted += len(head) - cut - 1
            head = head[: cut + 1]
        cut = tail.find(b"\n")
        if 0 <= cut < len(tail) // 4:
            omitted += cut + 1
            tail = tail[cut + 1 :]
        text = (
            head.decode("utf-8", errors="replace")
            + f"\n[... {omitted} bytes omitted ...]\n"
            + tail.decode("utf-8", errors="replace")
        )
        return text, omitted


@dataclass
class ProcResult:
    """How a shell command ended. `exit_code` is negative when a signal ended it."""

    exit_code: int | None
    output: str
    omitted_bytes: int
    total_bytes: int
    timed_out: bool
    cancelled: bool
    duration_s: float


# Credentials stay out of the commands the model runs, as Codex does: `printenv` would put
# them into the conversation, the session file and the provider's logs. A variable is dropped
# when its name contains one of these words (any case), is an AWS credential, or is one of
# the `hidden` names (the providers' api_key_env_var); `passthrough` names are kept anyway.
SECRET_NAME_MARKERS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL")
AWS_CREDENTIAL_VARS = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    }
)


def is_secret_name(name: str, hidden: Collection[str] = ()) -> bool:
    """Whether a variable named `name` is withheld from commands by default."""
    upper = name.upper()
    return (
        name in hidden
        or upper in AWS_CREDENTIAL_VARS
        or any(marker in upper for marker in SECRET_NAME_MARKERS)
    )


def shell_env(
    hidden: Collection[str] = frozenset(), passthrough: Collection[str] = frozenset()
) -> dict[str, str]:
    """The environment of a command: ours without credentials, plus NON_INTERACTIVE_ENV."""
    env = {k: v for k, v in os.environ.items() if k in passthrough or not is_secret_name(k, hidden)}
    env.update(NON_INTERACTIVE_ENV)
    return env


class _Protocol(asyncio.SubprocessProtocol):
    """Feeds output to the buffer and the live callback; notes exit and end of output apart,
    because background children can keep the pipe open after the shell exits."""

    def __init__(self, buffer: HeadTail, on_output: Callable[[str], None] | None) -> None:
        self.buffer = buffer
        self.on_output = on_output
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.exited = asyncio.Event()
        self.drained = asyncio.Event()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.buffer.feed(data)
        if self.on_output is not None:
            text = self.decoder.decode(data)
            if text:
                self.on_output(text)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.drained.set()

    def process_exited(self) -> None:
        self.exited.set()


async def run_shell(
    command: str,
    *,
    cwd: Path,
    timeout: float,
    cap_bytes: int = 30_000,
    on_output: Callable[[str], None] | None = None,
    cancel: asyncio.Event | None = None,
    env: Mapping[str, str] | None = None,
) -> ProcResult:
    """Run `command` with bash in its own process group, stdin closed, stdout+stderr merged.
    `env` defaults to shell_env(): credentials withheld."""
    started = time.monotonic()
    buffer = HeadTail(cap_bytes)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _Protocol(buffer, on_output),
        shutil.which("bash") or "/bin/bash",
        "-c",
        command,
        cwd=str(cwd),
        env=dict(shell_env() if env is None else env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pid = transport.get_pid()
    exited = asyncio.create_task(protocol.exited.wait())
    stopper = asyncio.create_task(cancel.wait()) if cancel is not None else None
    timed_out = cancelled = False
    try:
        waits = {exited} if stopper is None else {exited, stopper}
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if exited not in done:
            cancelled = stopper is not None and stopper in done
            timed_out = not cancelled
            await kill_group(pid, protocol.exited.is_set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(protocol.drained.wait(), DRAIN_GRACE_S)
    finally:
        for task in (exited, stopper):
            if task is not None and not task.done():
                task.cancel()
        if not protocol.exited.is_set():
            _signal_group(pid, signal.SIGKILL)
        transport.close()  # stop reading a pipe a background child may still hold
    output, omitted = buffer.render()
    return ProcResult(
        exit_code=transport.get_returncode(),
        output=output,
        omitted_bytes=omitted,
        total_bytes=buffer.total,
        timed_out=timed_out,
        cancelled=cancelled,
        duration_s=time.monotonic() - started,
    )


async def kill_group(pid: int, exited: Callable[[], bool]) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL whatever is left after a grace."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_S
    while (not exited() or _group_alive(pid)) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + KILL_GRACE_S
    while not exited() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process is left in the group."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # Orphans become zombies when no init reaps them (containers); they still count for killpg.
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False
