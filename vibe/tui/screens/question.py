"""The ask_user_question dialog: one to four questions, each with its header, its options (one
pick, or several with multi_select) and an "Other" answer typed by the user. Submit returns one
answer per question; Esc dismisses (the model is told the user did not answer)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, RadioButton, RadioSet, Static

OTHER = "Other"

Answers = list[dict[str, Any]]


class QuestionScreen(ModalScreen[Answers | None]):
    DEFAULT_CSS = """
    QuestionScreen { align: center middle; }
    #questions { width: 80%; max-width: 100; height: auto; max-height: 90%;
                 border: thick $accent; background: $surface; padding: 1 2; }
    #questions-body { height: auto; max-height: 70vh; }
    .question { height: auto; margin-bottom: 1; }
    .question-header { color: $accent; text-style: bold; }
    .question-text { text-style: bold; }
    .question-option-help { color: $text-muted; padding-left: 4; }
    .question-other { margin-left: 4; }
    #questions-error { color: $error; height: auto; }
    #questions-buttons { height: auto; margin-top: 1; }
    #questions-buttons Button { margin-right: 2; }
    """
    BINDINGS = [
        Binding("escape", "dismiss_none", show=False),
        Binding("ctrl+s", "submit", show=False),
    ]

    def __init__(self, questions: list[dict[str, Any]]) -> None:
        super().__init__(classes="question-screen")
        self.questions = questions

    def compose(self) -> ComposeResult:
        with Vertical(id="questions"):
            with VerticalScroll(id="questions-body"):
                for q, question in enumerate(self.questions):
                    with Vertical(classes="question", id=f"q{q}"):
                        if question.get("header"):
                            yield Static(question["header"], classes="question-header")
                        yield Static(question["question"], classes="question-text")
                        yield from self._options(q, question)
                        yield Input(
                            placeholder="Other: type your own answer",
                            id=f"q{q}-other-text",
                            classes="question-other",
                        )
            yield Static("", id="questions-error")
            with Horizontal(id="questions-buttons"):
                yield Button("Submit (ctrl+s)", variant="primary", id="questions-submit")
                yield Button("Dismiss (esc)", id="questions-dismiss")

    def _options(self, q: int, question: dict[str, Any]) -> ComposeResult:
        options = question["options"]
        if question.get("multi_select"):
            for o, option in enumerate(options):
                yield Checkbox(option["label"], id=f"q{q}-opt{o}")
                if option.get("description"):
                    yield Static(option["description"], classes="question-option-help")
            yield Checkbox(OTHER, id=f"q{q}-other")
            return
        with RadioSet(id=f"q{q}-options"):
            for o, option in enumerate(options):
                yield RadioButton(_label(option), id=f"q{q}-opt{o}")
            yield RadioButton(OTHER, id=f"q{q}-other")

    def on_mount(self) -> None:
        first = self.query("RadioSet, Checkbox").first()
        first.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Typing an own answer picks "Other"."""
        q = (event.input.id or "").removesuffix("-other-text")
        other = self.query_one(f"#{q}-other")
        if event.value.strip() and isinstance(other, RadioButton | Checkbox) and not other.value:
            other.value = True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "questions-submit":
            self.action_submit()
        elif event.button.id == "questions-dismiss":
            self.dismiss(None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        answers: Answers = []
        for q, question in enumerate(self.questions):
            answer = self.answer(q, question)
            if answer is None:
                self.query_one("#questions-error", Static).update(
                    f"Answer question {q + 1} ({question.get('header') or question['question']})"
                    " or press Esc to dismiss."
                )
                return
            answers.append(answer)
        self.dismiss(answers)

    def answer(self, q: int, question: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to question `q`, or None when nothing is picked (or Other is empty)."""
        labels = [o["label"] for o in question["options"]]
        picked = [
            label
            for o, label in enumerate(labels)
            if self.query_one(f"#q{q}-opt{o}").value  # type: ignore[attr-defined]
        ]
        other_on = self.query_one(f"#q{q}-other").value  # type: ignore[attr-defined]
        other = self.query_one(f"#q{q}-other-text", Input).value.strip()
        if other_on and not other:
            return None
        if other_on:
            picked.append(other)
        if not picked:
            return None
        return {"question": question["question"], "answer": ", ".join(picked), "is_other": other_on}


def _label(option: dict[str, Any]) -> str:
    description = option.get("description") or ""
    return f"{option['label']} — {description}" if description else option["label"]
