"""exit_plan_mode's dialog: the plan, then what to do with it: switch to accept-edits, switch to
the default mode (edits ask), or keep planning (also Esc)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown, OptionList, Static
from textual.widgets.option_list import Option

CHOICES = (
    ("accept-edits", "Yes, and accept edits (1)"),
    ("default", "Yes, and ask before each edit (2)"),
    ("keep", "No, keep planning (3)"),
)


class PlanReviewScreen(ModalScreen[str]):
    DEFAULT_CSS = """
    PlanReviewScreen { align: center middle; }
    #plan-review { width: 90%; max-width: 120; height: auto; max-height: 90%;
                   border: thick $accent; background: $surface; padding: 1 2; }
    #plan-review-title { text-style: bold; margin-bottom: 1; }
    #plan-review-body { background: $boost; height: auto; max-height: 60vh; margin-bottom: 1; }
    #plan-review-options { height: auto; }
    """
    BINDINGS = [
        Binding("1", "choose(0)", show=False),
        Binding("2", "choose(1)", show=False),
        Binding("3", "choose(2)", show=False),
        Binding("escape", "choose(2)", show=False),
    ]

    def __init__(self, plan: str, path: Path) -> None:
        super().__init__(classes="plan-review-screen")
        self.plan, self.path = plan, path

    def compose(self) -> ComposeResult:
        with Vertical(id="plan-review"):
            yield Static(f"The plan is ready ({self.path}). Implement it?", id="plan-review-title")
            with VerticalScroll(id="plan-review-body"):
                yield Markdown(self.plan, id="plan-review-plan")
            yield OptionList(
                *(Option(text, id=key) for key, text in CHOICES), id="plan-review-options"
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id or "keep")

    def action_choose(self, index: int) -> None:
        self.dismiss(CHOICES[index][0])
