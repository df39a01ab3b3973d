"""`ask_user_question`: ask the user one to four multiple-choice questions (an "Other" free-text
answer is always offered) and return the answers. Interactive only: the application hands in the
function that shows the questions (the TUI's dialog)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tools.base import Tool, ToolContext, ToolResult

OTHER = "Other"


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, description="Short label for the choice (1-5 words).")
    description: str = Field(default="", description="What this choice means or implies.")


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, description="The full question.")
    header: str = Field(
        default="", max_length=20, description="Short tag for the question (max 20 characters)."
    )
    options: list[Choice] = Field(
        min_length=2,
        max_length=6,
        description="2-4 choices; an 'Other' free-text answer is added automatically.",
    )
    multi_select: bool = Field(default=False, description="True: several options may be picked.")


class AskUserQuestionArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questions: list[Question] = Field(
        min_length=1, max_length=4, description="One to four questions, shown together."
    )


# Receives the questions as plain dicts; returns one answer per question
# ({"question", "answer", "is_other"}) or None when the user dismissed the dialog.
AskFunction = Callable[[list[dict[str, Any]]], Awaitable[list[dict[str, Any]] | None]]


class AskUserQuestionTool(Tool):
    name: ClassVar[str] = "ask_user_question"
    description: ClassVar[str] = (
        "Ask the user one to four questions and wait for the answers. Each question has a short "
        "header and 2-4 options with descriptions (an 'Other' free-text answer is added "
        "automatically); set multi_select when several options may apply. Use it to clarify "
        "requirements or get a decision instead of guessing."
    )
    Args: ClassVar[type[BaseModel]] = AskUserQuestionArgs
    access: ClassVar[str] = "none"

    def __init__(self, ask: AskFunction) -> None:
        self.ask = ask

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, AskUserQuestionArgs)
        questions = [q.model_dump() for q in args.questions]
        answers = await self.ask(questions)
        if answers is None:
            return ToolResult(
                "The user dismissed the questions without answering. Do not ask them again; "
                "go on with your best judgement or stop and explain what you need.",
                data={"answers": None},
            )
        return ToolResult(render(questions, answers), data={"answers": answers})


def render(questions: list[dict[str, Any]], answers: list[dict[str, Any]]) -> str:
    lines = ["The user answered:"]
    for number, (question, answer) in enumerate(zip(questions, answers, strict=False), 1):
        tag = f"[{question['header']}] " if question.get("header") else ""
        other = " (their own answer)" if answer.get("is_other") else ""
        lines.append(f"{number}. {tag}{question['question']}\n   → {answer['answer']}{other}")
    return "\n".join(lines)
