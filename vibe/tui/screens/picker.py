"""A generic list picker (/model, /mode, /resume, /rewind, /theme): Enter picks, Esc cancels.
With `filter`, typing narrows the list fuzzily; `note` is a line under the title."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option


class PickerScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", show=False)]

    def __init__(
        self,
        title: str,
        items: list[tuple[str, str]],
        current: str | None = None,
        *,
        filter: bool = False,
        note: str = "",
    ) -> None:
        """items: (id, label); the result is the chosen id, or None."""
        super().__init__(classes="picker-screen")
        self.title_text, self.items, self.current = title, items, current
        self.filter, self.note = filter, note
        self.shown = list(items)

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static(self.title_text, id="picker-title")
            if self.note:
                yield Static(self.note, id="picker-note")
            if self.filter:
                yield Input(placeholder="type to filter", id="picker-filter")
            yield OptionList(*self._options(self.items), id="picker-options")

    def _options(self, items: list[tuple[str, str]]) -> list[Option]:
        return [
            Option(("● " if key == self.current else "  ") + label, id=key) for key, label in items
        ]

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [key for key, _ in self.items]
        options.highlighted = ids.index(self.current) if self.current in ids else 0
        if self.filter:
            self.query_one(Input).focus()
        else:
            options.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        from vibe.tui.fuzzy import rank

        event.stop()
        self.shown = rank(event.value.strip(), self.items, lambda item: item[1])
        options = self.query_one(OptionList)
        options.set_options(self._options(self.shown))
        options.highlighted = 0 if self.shown else None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one(OptionList)
        if options.highlighted is not None and self.shown:
            self.dismiss(self.shown[options.highlighted][0])

    def on_key(self, event: events.Key) -> None:
        if self.filter and event.key in ("up", "down"):
            event.stop()
            options = self.query_one(OptionList)
            if options.option_count:
                step = -1 if event.key == "up" else 1
                options.highlighted = ((options.highlighted or 0) + step) % options.option_count

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
