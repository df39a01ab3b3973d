"""A generic list picker (used by /model, /mode and /resume): Enter picks, Esc cancels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


class PickerScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", show=False)]

    def __init__(
        self, title: str, items: list[tuple[str, str]], current: str | None = None
    ) -> None:
        """items: (id, label); the result is the chosen id, or None."""
        super().__init__(classes="picker-screen")
        self.title_text, self.items, self.current = title, items, current

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static(self.title_text, id="picker-title")
            options = [
                Option(("● " if key == self.current else "  ") + label, id=key)
                for key, label in self.items
            ]
            yield OptionList(*options, id="picker-options")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [key for key, _ in self.items]
        options.highlighted = ids.index(self.current) if self.current in ids else 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
