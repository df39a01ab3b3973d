"""The Textual App: layout and key bindings. Startup, the prompt queue, turns, mode and model
switching live in the controller (controller.py), which slash commands (commands.py) use; event
display is in router.py. Only the first frame's widgets import at module level; the rest loads
after that frame."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets._static import Static

from vibe.errors import VibeError
from vibe.tui.completion import Completer
from vibe.tui.controller import Controller
from vibe.tui.history import InputHistory
from vibe.tui.widgets.chat_log import ChatLog
from vibe.tui.widgets.footer import StatusFooter
from vibe.tui.widgets.prompt import CompletionMenu, PromptInput

if TYPE_CHECKING:
    from vibe.config import LoadedConfig
    from vibe.runtime import Runtime
    from vibe.session import Session
    from vibe.tui.router import EventRouter
    from vibe.tui.widgets.messages import UserMessage

DOUBLE_PRESS_S = 2.0
DOUBLE_ESC_S = 1.0  # Esc twice on an empty input opens /rewind
HISTORY_FILE = "input_history.jsonl"


@dataclass
class AppOptions:
    """What the command line asked for, plus test seams."""

    cwd: Path
    prompt: str | None = None
    model: str | None = None
    mode: str | None = None
    session: Session | None = None
    pick_session: bool = False  # --resume without an id: the picker of this folder's sessions
    trust: bool = False
    add_dirs: tuple[Path, ...] = ()  # --add-dir: more folders the tools may work in
    provider_factory: Any = None  # vibe.build.ProviderFactory; None: the configured one
    approval_grace_s: float | None = None  # None: the approval dialog's default
    cursor_blink: bool = True  # snapshots turn it off: no picture may depend on the clock
    # Reads the config (and the session to resume) after the first frame; raises VibeError.
    load: Callable[[], tuple[LoadedConfig, Session | None]] | None = None


class VibeApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "vibe"
    BINDINGS = [
        Binding("shift+tab", "cycle_mode", "Mode", priority=True, show=False),
        Binding("escape", "interrupt", "Interrupt", show=False),
        Binding("ctrl+c", "ctrl_c", show=False, priority=True),
        Binding("ctrl+d", "ctrl_d", show=False, priority=True),
        Binding("ctrl+g", "edit_in_editor", show=False, priority=True),
    ]

    def __init__(self, loaded: LoadedConfig | None, options: AppOptions) -> None:
        """`loaded` None: options.load reads the config after the first frame; a VibeError
        there ends the app with the error in `startup_error` (the caller reports it)."""
        super().__init__()
        self.options = options
        self.cwd = options.cwd
        self.ctl = Controller(self, loaded, options)
        self._last_ctrl_d = 0.0
        self._last_esc = 0.0
        self.history = InputHistory(loaded.home / HISTORY_FILE if loaded else None)
        self.completer = Completer(self.ctl.completions, self.cwd)

    # The controller's state, for the widgets and tests that read it from the App.
    @property
    def loaded(self) -> LoadedConfig | None:
        return self.ctl.loaded

    @property
    def runtime(self) -> Runtime | None:
        return self.ctl.runtime

    @property
    def router(self) -> EventRouter | None:
        return self.ctl.router

    @property
    def busy(self) -> bool:
        return self.ctl.busy

    @property
    def pending(self) -> deque[tuple[str, UserMessage]]:
        return self.ctl.pending

    @property
    def startup_error(self) -> VibeError | None:
        return self.ctl.startup_error

    async def submit(self, text: str) -> None:
        await self.ctl.submit(text)

    # ---- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        self.chat = ChatLog(id="chat")
        self.footer_bar = StatusFooter(self.cwd)
        menu = CompletionMenu()
        self.prompt = PromptInput(self.history, self.completer, menu)
        self.prompt.set_blink(self.options.cursor_blink)
        yield self.chat
        with Vertical(id="bottom"):
            yield Vertical(id="queue")
            yield menu
            yield Static("", id="activity")
            yield self.prompt
            yield self.footer_bar

    def on_mount(self) -> None:
        self.prompt.focus()
        # After the first frame is painted: the config load must not compete with it for the GIL.
        self.call_after_refresh(self.ctl.start)

    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        await self.ctl.submit(event.text)

    def on_app_focus(self, _event: events.AppFocus) -> None:
        if self.ctl.notifier is not None:
            self.ctl.notifier.focused = True

    def on_app_blur(self, _event: events.AppBlur) -> None:
        if self.ctl.notifier is not None:
            self.ctl.notifier.focused = False

    # ---- keys -------------------------------------------------------------------------------

    async def action_cycle_mode(self) -> None:
        await self.ctl.cycle_mode()

    def action_interrupt(self) -> None:
        if self.ctl.interrupt() or self.prompt.text or self.screen is not self.screen_stack[0]:
            return
        now = time.monotonic()
        if now - self._last_esc < DOUBLE_ESC_S:
            self._last_esc = 0.0
            self.call_later(self.ctl.open_rewind)
            return
        self._last_esc = now

    def action_ctrl_c(self) -> None:
        from vibe.tui.screens.confirm import quit_screen

        selected = self.screen.get_selected_text()
        if selected:  # a mouse selection: Ctrl+C copies it
            self.screen.clear_selection()
            self.call_later(self.ctl.copy_text, selected, "the selection")
            return
        if self.screen is not self.screen_stack[0]:
            return
        if self.prompt.text:
            self.prompt.set_value("")
        elif not self.ctl.interrupt():
            self.push_screen(quit_screen(), lambda yes: self.exit(0) if yes else None)

    def action_ctrl_d(self) -> None:
        if self.prompt.text:
            return
        now = time.monotonic()
        if now - self._last_ctrl_d < DOUBLE_PRESS_S:
            self.exit(0)
            return
        self._last_ctrl_d = now
        self.notify("Press Ctrl+D again to quit.", timeout=DOUBLE_PRESS_S)

    def action_edit_in_editor(self) -> None:
        from vibe.tui.editor import edit_prompt

        if self.screen is self.screen_stack[0]:
            self.run_worker(edit_prompt(self), group="editor", exclusive=True)

    async def on_unmount(self) -> None:
        await self.ctl.aclose()
