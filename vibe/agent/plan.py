"""Plan mode the model knows about: the plan file ($VIBE_HOME/plans/<session id>.md, the one file
it may write without asking), the reminders added to the conversation when plan mode starts and
ends, the exit_plan_mode review, and the plan as the result of a headless run."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vibe.agent.interaction import Interaction
    from vibe.config import ModeConfig
    from vibe.events import TurnFinished

PLANS_DIR = "plans"
# Tools that only read or talk to the user: they run without asking, in plan mode too.
QUIET_TOOLS = frozenset({"skill", "ask_user_question", "exit_plan_mode"})
_MAX_PLAN_CHARS = 100_000


def plan_path(home: Path, session_id: str) -> Path:
    return home / PLANS_DIR / f"{session_id}.md"


def is_plan_mode(mode: ModeConfig) -> bool:
    return mode.safety == "safe"


def reminder(text: str) -> str:
    return f"<system-reminder>\n{text.strip()}\n</system-reminder>"


def enter_reminder(path: Path, interactive: bool) -> str:
    finish = (
        "When the plan is complete, call `exit_plan_mode` so the user can review it."
        if interactive
        else "When the plan is complete, end your turn with the plan as your answer."
    )
    return reminder(
        "Plan mode is on. You are read-only: explore the code (read_file, grep, read-only "
        "commands) and work out a plan; do not change any file, with one exception: write your "
        f"plan, as Markdown, to {path} with write_file or edit (allowed without asking). "
        f"{finish}"
    )


def leave_reminder(mode_label: str) -> str:
    return reminder(
        f"Plan mode is off: the user switched to the {mode_label} mode. You may now change "
        "files and run commands (with the usual approvals); implement the plan if there is one."
    )


def transition(old: ModeConfig, new: ModeConfig, path: Path, interactive: bool) -> str | None:
    """The reminder for a mode switch, or None when plan mode neither starts nor ends."""
    if is_plan_mode(new) and not is_plan_mode(old):
        return enter_reminder(path, interactive)
    if is_plan_mode(old) and not is_plan_mode(new):
        return leave_reminder(new.display_name or new.name)
    return None


def with_reminders(prompt: str, reminders: list[str]) -> str:
    """The user's prompt with the pending reminders after it."""
    return "\n\n".join([prompt, *reminders]) if reminders else prompt


def read_plan(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:_MAX_PLAN_CHARS]
    except OSError:
        return ""


def exit_review(interaction: Interaction, path: Path) -> Callable[[], Awaitable[str]]:
    """exit_plan_mode's action: show the plan, then tell the model what the user chose."""

    async def review() -> str:
        plan = read_plan(path)
        if not plan.strip():
            return (
                f"No plan has been written to {path} yet. Write the plan there with "
                "write_file, then call exit_plan_mode again."
            )
        choice = await interaction.review_plan(plan, path)
        if choice is None or choice == "keep":
            return (
                "The user wants to keep planning: stay in plan mode, ask what to change if it "
                "is unclear (ask_user_question), update the plan file and call exit_plan_mode "
                "again when it is ready."
            )
        return (
            f"The user approved the plan and switched to the {choice} mode. Implement the plan "
            f"now (it is in {path})."
        )

    return review


def headless_result(fin: TurnFinished, path: Path | None, mode: ModeConfig) -> TurnFinished:
    """A headless run in plan mode ends with the plan (the plan file) as its result."""
    if path is None or not is_plan_mode(mode) or fin.status != "completed":
        return fin
    plan = read_plan(path).strip()
    return dataclasses.replace(fin, text=plan) if plan else fin
