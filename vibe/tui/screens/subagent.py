"""A subagent's transcript, read-only: the child's messages, tool calls and results rendered
like the main chat. Opened from a `task` card; while the child still runs it follows the
transcript file (`<session>/tasks/<call id>/messages.jsonl`) as the child appends to it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from vibe.messages import Message, parse_arguments
from vibe.tui.transcript import factories
from vibe.tui.widgets.chat_log import ChatLog
from vibe.tui.widgets.tool_card import ToolCard, summarize_args

POLL_S = 0.3  # how often a running child's transcript file is checked for new messages

Factory = Callable[[], Widget]


def _safe(call_id: str) -> str:
    """The folder name vibe.subagents.runner.child_session gives a call id."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", call_id)[:80].lstrip(".") or "call"


def transcript_dir(
    call_id: str, data: dict[str, Any] | None, session_dir: Path | None
) -> Path | None:
    """The child's session folder: the one the task result names, else (the child still runs,
    or a resumed session's card has no data) the newest `tasks/<call id>[-n]` of the session."""
    named = (data or {}).get("transcript")
    if isinstance(named, str) and Path(named).is_dir():
        return Path(named)
    if session_dir is None:
        return None
    tasks, safe = session_dir / "tasks", _safe(call_id)
    best: tuple[int, Path] | None = None
    try:
        children = list(tasks.iterdir())
    except OSError:
        return None
    for path in children:
        if path.name == safe:
            n = 0
        elif path.name.startswith(f"{safe}-") and path.name[len(safe) + 1 :].isdigit():
            n = int(path.name[len(safe) + 1 :])
        else:
            continue
        if path.is_dir() and (best is None or n > best[0]):
            best = (n, path)
    return best[1] if best else None


def entries(messages: list[Message], running: bool) -> list[Factory]:
    """The main chat's entries for these messages; while the child runs, a call without its
    result yet is shown running rather than cancelled."""
    out = factories(messages)
    if not running:
        return out
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    pending = {
        c.id: c
        for m in messages
        if m.role == "assistant"
        for c in m.tool_calls
        if c.id not in answered
    }
    for i, f in enumerate(out):
        if isinstance(f, partial) and f.func is ToolCard and f.args and f.args[0] in pending:
            call = pending[f.args[0]]
            summary = summarize_args(call.name, parse_arguments(call.arguments), call.arguments)
            out[i] = partial(ToolCard, call.id, call.name, summary, status="running")
    return out


def _load(path: Path) -> tuple[dict[str, Any], list[Message]]:
    from vibe.session import Session

    session = Session.load(path)  # no lock: the running child holds the log open for writing
    return session.meta, session.messages


class SubagentScreen(Screen[None]):
    """The child's conversation; Esc (or q) closes it."""

    DEFAULT_CSS = """
    SubagentScreen { layout: vertical; }
    #subagent-title { height: auto; padding: 0 1; background: $boost; text-style: bold; }
    #subagent-log { height: 1fr; padding: 0 1; }
    #subagent-hint { height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", show=False),
        Binding("q", "close", show=False),
    ]

    def __init__(self, path: Path, card: ToolCard | None = None) -> None:
        super().__init__(classes="subagent-screen")
        self.path, self.card = path, card
        self.messages: list[Message] = []
        self.meta: dict[str, Any] = {}
        self._stamp: tuple[int, int] | None = None
        self._busy = False
        self._timer = None
        self.title_bar = Static(id="subagent-title")
        self.log_view = ChatLog(id="subagent-log")

    @property
    def running(self) -> bool:
        return self.card is not None and self.card.status == "running"

    def compose(self) -> ComposeResult:
        yield self.title_bar
        yield self.log_view
        yield Static("Read-only subagent transcript · Esc close", id="subagent-hint")

    async def on_mount(self) -> None:
        await self.refresh_transcript()
        self.log_view.focus()
        if self.running:
            self._timer = self.set_interval(POLL_S, self._poll)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.path / "messages.jsonl").stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    async def _poll(self) -> None:
        if self._busy:
            return
        still = self.running
        if self._file_stamp() != self._stamp or not still:
            await self.refresh_transcript()
        if not still and self._timer is not None:
            self._timer.stop()
            self._timer = None

    async def refresh_transcript(self) -> None:
        """Read the transcript again and show it (the whole log: it is one child's work)."""
        self._busy = True
        try:
            stamp = self._file_stamp()
            try:
                self.meta, self.messages = await asyncio.to_thread(_load, self.path)
            except Exception as exc:  # unreadable or half-written: say so, keep the screen
                self.title_bar.update(f"Subagent transcript unreadable: {exc}")
                return
            self._stamp = stamp
            await self.log_view.load(entries(self.messages, self.running))
            self._render_title()
        finally:
            self._busy = False

    def _render_title(self) -> None:
        agent = self.meta.get("agent") or "sub"
        task = str(self.meta.get("task") or "").splitlines()
        state = "running" if self.running else (self.card.status if self.card else "saved")
        head = f"{agent} subagent · {state} · {len(self.messages)} messages"
        if task:
            head += f" · {task[0][:80]}"
        self.title_bar.update(head)

    def action_close(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.dismiss(None)
