"""The TUI side of vibe.agent.interaction: ask_user_question opens the question dialog,
exit_plan_mode the plan review, whose choice switches the mode. Like TuiApprover, an interrupt
while a dialog is open closes it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual.screen import ModalScreen

if TYPE_CHECKING:
    from vibe.tui.controller import Controller

T = TypeVar("T")


class TuiInteraction:
    def __init__(self, ctl: Controller) -> None:
        self.ctl, self.app = ctl, ctl.app

    async def _show(self, screen: ModalScreen[T], cancelled: T) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        def done(value: T) -> None:
            if not future.done():
                future.set_result(value)

        self.app.push_screen(screen, done)
        self.ctl.attention("vibe: a question waits for your answer")
        try:
            return await future
        except asyncio.CancelledError:
            if screen.is_attached and self.app.screen is screen:
                screen.dismiss(cancelled)
            raise

    async def ask_questions(self, questions: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        from vibe.tui.screens.question import QuestionScreen

        return await self._show(QuestionScreen(questions), None)

    async def review_plan(self, plan: str, path: Path) -> str | None:
        from vibe.tui.screens.plan_review import PlanReviewScreen

        choice = await self._show(PlanReviewScreen(plan, path), "keep")
        runtime, loaded = self.ctl.runtime, self.ctl.loaded
        if choice in (None, "keep") or runtime is None or loaded is None:
            return "keep"
        if loaded.mode(choice) is None:
            return "keep"
        await self.ctl.switch_mode(choice)
        if runtime.extras is not None:  # the tool result tells the model: no second reminder
            runtime.extras.reminders.clear()
        return choice
