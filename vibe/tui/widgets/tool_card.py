"""A tool call as a card: live status and elapsed time, collapsible output, diff, todo list."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Collapsible, Static

from vibe.tui.widgets.messages import ThrottledStatic

_ICONS = {"running": "◌", "ok": "✓", "error": "✗", "denied": "⊘", "cancelled": "■"}
_MAX_LIVE_CHARS = 20_000  # live output is for watching; the model gets the full result
_SUMMARY_KEYS = ("command", "path", "pattern")


def summarize_args(name: str, arguments: dict[str, Any] | None, raw: str = "") -> str:
    """One line that says what the call does: the command, the path, or the JSON."""
    if arguments is None:
        return raw[:120]
    for key in _SUMMARY_KEYS:
        if isinstance(arguments.get(key), str):
            return arguments[key].splitlines()[0][:120] if arguments[key] else ""
    if name == "todo":
        return f"{len(arguments.get('todos') or [])} items"
    return json.dumps(arguments, ensure_ascii=False)[:120]


def render_todos(todos: list[dict[str, Any]]) -> Text:
    marks = {"completed": "[x]", "in_progress": "[~]", "pending": "[ ]", "cancelled": "[-]"}
    text = Text()
    for i, item in enumerate(todos):
        status = str(item.get("status", "pending"))
        style = {"completed": "dim strike", "in_progress": "bold"}.get(status, "")
        if i:
            text.append("\n")
        text.append(f"{marks.get(status, '[ ]')} {item.get('content', '')}", style=style)
    return text


class ToolCard(Widget):
    """Status, elapsed time, the arguments on one line; output folds, diffs and todos show."""

    DEFAULT_CSS = "ToolCard { height: auto; } ToolCard.task-card:focus { background: $boost; }"
    BINDINGS = [Binding("enter", "open_transcript", "Transcript", show=False)]

    def __init__(
        self,
        call_id: str,
        name: str,
        summary: str,
        *,
        status: str = "running",
        result: str = "",
        diff: str | None = None,
        data: dict[str, Any] | None = None,
        duration_ms: int = 0,
    ) -> None:
        super().__init__(classes=f"tool-card status-{status}")
        self.call_id, self.tool_name, self.summary = call_id, name, summary
        self.status, self.result, self.diff, self.data = status, result, diff, data
        self.duration_ms = duration_ms
        self._started = time.monotonic()
        self._timer = None
        self.header = Static(classes="tool-header")
        self.output = ThrottledStatic(result, classes="tool-output")
        self.fold = Collapsible(self.output, title="output", collapsed=True, classes="tool-fold")
        # A task card opens the subagent's transcript (click, or Enter when focused).
        self.can_focus = name == "task"
        if self.can_focus:
            self.add_class("task-card")

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.fold
        yield Static(classes="tool-extra")

    def on_mount(self) -> None:
        self._render_header()
        if self.status == "running":
            self._timer = self.set_interval(0.1, self._render_header)
        else:
            self._show_result()

    def _elapsed(self) -> float:
        if self.status == "running":
            return time.monotonic() - self._started
        return self.duration_ms / 1000

    def _render_header(self) -> None:
        text = Text()
        text.append(f"{_ICONS.get(self.status, '?')} ", style=f"bold {self._color()}")
        text.append(self.tool_name, style="bold")
        if self.summary:
            text.append(f"  {self.summary}", style="italic")
        text.append(f"  {self.status} {self._elapsed():.1f}s", style="dim")
        if self.tool_name == "task":
            text.append("  · Enter/click: transcript", style="dim")
        self.header.update(text)

    def on_click(self, event: events.Click) -> None:
        # The fold's title toggles the output; a click anywhere else opens the transcript.
        node = event.widget
        while node is not None and node is not self:
            if node is self.fold:
                return
            node = node.parent
        if self.tool_name == "task":
            event.stop()
            self.action_open_transcript()

    def action_open_transcript(self) -> None:
        """Push the subagent's transcript screen (vibe.tui.screens.subagent)."""
        if self.tool_name != "task":
            return
        from vibe.tui.screens.subagent import SubagentScreen, transcript_dir

        runtime = getattr(self.app, "runtime", None)
        session_dir = runtime.session.path if runtime is not None else None
        path = transcript_dir(self.call_id, self.data, session_dir)
        if path is None:
            self.app.notify("The subagent's transcript is not saved yet.", severity="warning")
            return
        self.app.push_screen(SubagentScreen(path, self))

    def _color(self) -> str:
        return {"ok": "green", "error": "red", "denied": "yellow", "cancelled": "yellow"}.get(
            self.status, "cyan"
        )

    def append_output(self, text: str) -> None:
        if self.output.length < _MAX_LIVE_CHARS:
            self.output.append(text)
            self.fold.collapsed = False

    def finish(
        self, status: str, result: str, diff: str | None, data: dict | None, ms: int
    ) -> None:
        self.status, self.result, self.diff, self.data = status, result, diff, data
        self.duration_ms = ms or int((time.monotonic() - self._started) * 1000)
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.set_classes(f"tool-card status-{status}")
        self._render_header()
        self._show_result()

    def _show_result(self) -> None:
        self.output.text = self.result
        self.output.update(Text(self.result))
        # Errors stay open so the user sees why; successful output folds away.
        self.fold.collapsed = self.status == "ok" or not self.result
        extra = self.query_one(".tool-extra", Static)
        todos = (self.data or {}).get("todos")
        if isinstance(todos, list):
            extra.update(render_todos(todos))
            extra.add_class("todos")
        elif self.diff:
            from rich.syntax import Syntax  # pygments: loaded on the first diff, not at startup

            extra.update(Syntax(self.diff, "diff", theme="ansi_dark", word_wrap=True))
            extra.add_class("diff")

    def rebuild(self) -> Callable[[], Widget]:
        return partial(
            ToolCard,
            self.call_id,
            self.tool_name,
            self.summary,
            status=self.status,
            result=self.result,
            diff=self.diff,
            data=self.data,
            duration_ms=self.duration_ms,
        )
