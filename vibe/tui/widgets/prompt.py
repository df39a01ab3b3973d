"""The prompt: a multi-line TextArea with history, a completion menu, and submit on Enter."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import OptionList, TextArea
from textual.widgets.option_list import Option

from vibe.tui.completion import Candidates, Completer, apply
from vibe.tui.history import InputHistory


class CompletionMenu(OptionList):
    """Candidates shown above the prompt; the prompt keeps focus and drives it."""

    can_focus = False

    def __init__(self) -> None:
        super().__init__(id="completion-menu")
        self.display = False
        self.candidates: Candidates | None = None

    def show(self, cands: Candidates) -> None:
        self.candidates = cands
        self.set_options(
            [
                Option(f"{v}  [dim]{d}[/]" if d else v, id=str(i))
                for i, (v, d) in enumerate(cands.items)
            ]
        )
        self.highlighted = 0
        self.display = True

    def hide(self) -> None:
        self.candidates = None
        if self.display:  # setting display re-runs the layout; typing must not pay for it
            self.display = False

    def move(self, step: int) -> None:
        if self.option_count:
            self.highlighted = ((self.highlighted or 0) + step) % self.option_count

    @property
    def value(self) -> str | None:
        if self.candidates is None or self.highlighted is None:
            return None
        return self.candidates.items[self.highlighted][0]


BLINK_FOR_S = 5.0  # after this long without a key the cursor holds still: idle means no repaints


class PromptInput(TextArea):
    """Enter submits; Ctrl+J / Shift+Enter insert a newline; ↑/↓ at the edges walk history.
    The cursor blinks only for BLINK_FOR_S after the last key (never, when blink is off)."""

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, history: InputHistory, completer: Completer, menu: CompletionMenu) -> None:
        super().__init__(id="prompt", soft_wrap=True, show_line_numbers=False, compact=True)
        self.input_history, self.completer, self.menu = history, completer, menu
        self._applying = False
        self.blink = True
        self._steady_timer = None

    def set_blink(self, blink: bool) -> None:
        self.blink = blink
        self.cursor_blink = blink

    def on_mount(self) -> None:
        self._wake_cursor()

    def _wake_cursor(self) -> None:
        if not self.blink:
            return
        if not self.cursor_blink:
            self.cursor_blink = True
        if self._steady_timer is None:
            self._steady_timer = self.set_timer(BLINK_FOR_S, self._hold_cursor)
        else:
            self._steady_timer.reset()

    def _hold_cursor(self) -> None:
        self._steady_timer = None
        self.cursor_blink = False
        # TextArea's line cache cannot tell a steady cursor from a blinked-off one; drop it, or
        # a line cached in the off phase would hide the cursor.
        self.notify_style_update()

    def set_value(self, text: str) -> None:
        self._applying = True
        self.load_text(text)
        lines = text.split("\n")
        self.move_cursor((len(lines) - 1, len(lines[-1])))
        self._applying = False
        self.menu.hide()

    async def _on_key(self, event: events.Key) -> None:
        self._wake_cursor()
        key = event.key
        handled = True
        if self.menu.display and key in ("up", "down", "tab", "enter", "escape"):
            if key in ("up", "down"):
                self.menu.move(-1 if key == "up" else 1)
            elif key == "escape":
                self.menu.hide()
            else:
                self.accept_completion()
        elif key == "enter":
            self._submit()
        elif key in ("ctrl+j", "shift+enter", "newline"):
            self.insert("\n")
        elif key == "up" and self.cursor_location[0] == 0:
            value = self.input_history.previous(self.text)
            if value is not None:
                self.set_value(value)
        elif key == "down" and self.cursor_location[0] == self.document.line_count - 1:
            value = self.input_history.next()
            if value is not None:
                self.set_value(value)
        else:
            handled = False
        if handled:
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)

    def accept_completion(self) -> None:
        cands, value = self.menu.candidates, self.menu.value
        if cands is None or value is None:
            return
        text, cursor = apply(self.text, cands, value)
        self._applying = True
        self.load_text(text)
        self.move_cursor(cursor)
        self._applying = False
        self.menu.hide()

    def _submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        self.input_history.add(text)
        self.set_value("")
        self.post_message(self.Submitted(text))

    def on_text_area_changed(self, _event: TextArea.Changed) -> None:
        if self._applying:
            return
        row, col = self.cursor_location
        cands = self.completer.complete(self.text, row, col)
        if cands is None:
            self.menu.hide()
        else:
            self.menu.show(cands)
