"""The approval dialog: allow once · for this session · always · deny with feedback.
It shows what the call will do (vibe.tui.preview): an edit's diff, a write's content, the whole
command. Keys arriving in the first GRACE_S after it opens are ignored: they were typed for the
prompt. PageUp/PageDown scroll a long preview."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import RenderableType
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from vibe.agent.approval import ApprovalRequest, Decision
from vibe.tui.preview import Preview, preview

GRACE_S = 0.3
_CHOICES = ("once", "session", "always", "deny")


def render_body(shown: Preview) -> RenderableType:
    """The preview's body: a highlighted diff, or the text as it is (wrapped, never cut)."""
    if shown.kind == "diff" and shown.body:
        from rich.syntax import Syntax

        return Syntax(shown.body.rstrip("\n"), "diff", theme="ansi_dark", word_wrap=True)
    return Text(shown.body)


class ApprovalScreen(ModalScreen[Decision]):
    BINDINGS = [
        Binding("1", "choose(0)", show=False),
        Binding("2", "choose(1)", show=False),
        Binding("3", "choose(2)", show=False),
        Binding("4", "choose(3)", show=False),
        Binding("y", "choose(0)", show=False),
        Binding("n", "choose(3)", show=False),
        Binding("escape", "escape", show=False),
        Binding("pageup", "scroll_body(-1)", show=False),
        Binding("pagedown", "scroll_body(1)", show=False),
    ]

    def __init__(
        self,
        request: ApprovalRequest,
        grace_s: float = GRACE_S,
        shown: Preview | None = None,
        cwd: Path | None = None,
    ) -> None:
        """`shown`: the preview (TuiApprover computes it off the UI thread); else it is
        computed here against `cwd` (default: the process's)."""
        super().__init__(classes="approval-screen")
        self.request = request
        self.preview = shown or preview(request.tool_name, request.arguments, cwd or Path.cwd())
        self._opened = time.monotonic()
        self.grace_s = grace_s

    def compose(self) -> ComposeResult:
        req = self.request
        pattern = req.session_pattern or req.tool_name
        with Vertical(id="approval"):
            who = f"{req.tool_name} (asked by the {req.agent} subagent)" if req.agent else req.tool_name
            yield Static(Text(f"{who} wants to run", style="bold"), id="approval-title")
            shown = self.preview
            if shown.summary:
                style = "bold red" if shown.kind == "error" else "bold"
                yield Static(Text(shown.summary, style=style), id="approval-summary")
            if shown.body:
                with VerticalScroll(id="approval-body"):
                    yield Static(render_body(shown), id="approval-args")
            if req.reason:
                yield Static(Text(req.reason, style="italic"), id="approval-reason")
            yield OptionList(
                Option("1  Allow once", id="once"),
                Option(f"2  Allow for this session ({pattern})", id="session"),
                Option(f"3  Always allow ({pattern}, saved to config.toml)", id="always"),
                Option("4  Deny (tell the model why)", id="deny"),
                id="approval-options",
            )
            yield Input(
                placeholder="why not? (Enter to send, empty is fine)", id="approval-feedback"
            )

    def on_mount(self) -> None:
        self.query_one("#approval-feedback").display = False
        self.query_one(OptionList).focus()

    def action_scroll_body(self, direction: int) -> None:
        for body in self.query("#approval-body").results(VerticalScroll):
            if direction < 0:
                body.scroll_page_up()
            else:
                body.scroll_page_down()

    def _in_grace(self) -> bool:
        return time.monotonic() - self._opened < self.grace_s

    def on_key(self, event: events.Key) -> None:
        # Swallow everything during the grace period, Enter included (OptionList would select).
        if self._in_grace():
            event.stop()
            event.prevent_default()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose":
            return not (self._in_grace() or self.query_one("#approval-feedback").display)
        return True

    def action_choose(self, index: int) -> None:
        self._decide(_CHOICES[index])

    def action_escape(self) -> None:
        feedback = self.query_one("#approval-feedback", Input)
        if feedback.display:
            self.dismiss(Decision("deny", feedback=feedback.value))
        elif not self._in_grace():
            self.dismiss(Decision("deny"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if not self._in_grace() and event.option.id:
            self._decide(event.option.id)

    def _decide(self, choice: str) -> None:
        pattern = self.request.session_pattern or self.request.tool_name
        if choice == "deny":
            feedback = self.query_one("#approval-feedback", Input)
            feedback.display = True
            self.query_one(OptionList).disabled = True
            feedback.focus()
            return
        self.dismiss(Decision(choice, pattern="" if choice == "once" else pattern))  # type: ignore[arg-type]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(Decision("deny", feedback=event.value.strip()))
