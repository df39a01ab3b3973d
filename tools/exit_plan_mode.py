"""`exit_plan_mode`: offered in plan mode once the plan is written. The application shows the
plan to the user and returns what they decided (switch to a mode that may edit, or keep
planning); the text it returns is what the model is told."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from tools.base import Tool, ToolContext, ToolResult


class ExitPlanModeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExitPlanModeTool(Tool):
    name: ClassVar[str] = "exit_plan_mode"
    description: ClassVar[str] = (
        "Call when your plan is complete and written to the plan file: the user reviews it and "
        "either lets you implement it or asks you to keep planning."
    )
    Args: ClassVar[type[BaseModel]] = ExitPlanModeArgs
    # A barrier: the user must review the plan file after a sibling write to it has finished,
    # and calls after it run under the mode the user chose, not during the review.
    access: ClassVar[str] = "any"

    def __init__(self, review: Callable[[], Awaitable[str]]) -> None:
        self.review = review

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        return ToolResult(await self.review())
