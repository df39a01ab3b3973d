"""First run without an API key: ask for it (saved to $VIBE_HOME/.env, 0600) or, when the local
engine and the SmolLM2 demo weights are installed, offer the offline demo model instead."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


@dataclass(frozen=True)
class OnboardingResult:
    """action: key (value holds the key) | demo | quit."""

    action: str
    value: str = ""


class OnboardingScreen(ModalScreen[OnboardingResult]):
    BINDINGS = [Binding("escape", "quit", show=False)]

    def __init__(self, provider: str, env_var: str, env_file: str, offer_demo: bool) -> None:
        super().__init__(classes="onboarding-screen")
        self.provider, self.env_var, self.env_file = provider, env_var, env_file
        self.offer_demo = offer_demo

    def compose(self) -> ComposeResult:
        with Vertical(id="onboarding"):
            yield Static("Welcome to vibe", id="onboarding-title")
            yield Static(
                f"The {self.provider} provider needs an API key ({self.env_var}). "
                f"Paste it below; it is saved to {self.env_file} (readable only by you).",
                id="onboarding-text",
            )
            yield Input(placeholder=self.env_var, password=True, id="onboarding-key")
            yield Static("", id="onboarding-error")
            with Horizontal(id="onboarding-buttons"):
                yield Button("Save key", variant="primary", id="save")
                if self.offer_demo:
                    yield Button("Try offline with the demo model", id="demo")
                yield Button("Quit", id="quit")

    def on_mount(self) -> None:
        self.query_one("#onboarding-key", Input).focus()

    def _save(self) -> None:
        value = self.query_one("#onboarding-key", Input).value.strip()
        if not value or any(c.isspace() for c in value):
            self.query_one("#onboarding-error", Static).update("Enter a key without spaces.")
            return
        self.dismiss(OnboardingResult("key", value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self._save()
        elif event.button.id == "demo":
            self.dismiss(OnboardingResult("demo"))
        else:
            self.dismiss(OnboardingResult("quit"))

    def action_quit(self) -> None:
        self.dismiss(OnboardingResult("quit"))
