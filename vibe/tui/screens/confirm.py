"""Yes/no questions: trust this folder? quit while the agent works?"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from vibe.tui.widgets.footer import short_path


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", show=False),
        Binding("n,escape", "answer(False)", show=False),
    ]

    def __init__(self, question: str, detail: str = "", yes: str = "Yes", no: str = "No") -> None:
        super().__init__(classes="confirm-screen")
        self.question, self.detail, self.yes, self.no = question, detail, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(self.question, id="confirm-question")
            if self.detail:
                yield Static(self.detail, id="confirm-detail")
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes} (y)", variant="primary", id="yes")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


def trust_screen(folder: Path) -> ConfirmScreen:
    return ConfirmScreen(
        f"Trust the folder {short_path(folder)}?",
        "This project (its git root, else this folder) has a .vibe/ config or AGENTS.md. "
        "Trusting it lets its config and instructions take effect (they can change the model "
        "endpoint and the agent's behaviour). Either answer is remembered in "
        "trusted_folders.toml; --trust trusts it for one run.",
        yes="Trust",
        no="Don't trust",
    )


def quit_screen() -> ConfirmScreen:
    return ConfirmScreen("Quit vibe?", "The session is saved; resume it with `vibe --continue`.")
