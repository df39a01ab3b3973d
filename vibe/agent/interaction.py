"""How tools that talk to the user (ask_user_question, exit_plan_mode) reach a UI: a narrow
protocol, like Approver. The TUI implements it (vibe.tui.interaction); headless runs have none,
so those tools are not offered there."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

PlanChoice = Literal["accept-edits", "default", "keep"]


class Interaction(Protocol):
    async def ask_questions(self, questions: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """One answer per question ({"question", "answer", "is_other"}); None if dismissed."""
        ...

    async def review_plan(self, plan: str, path: Path) -> str | None:
        """Show the plan; switch to the mode the user picks and return its name, or "keep"
        (None: dismissed, keep planning)."""
        ...
