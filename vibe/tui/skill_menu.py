"""User-invocable skills as slash commands in the TUI: `/name args` sends the skill (expanded by
vibe.agent.turn when the turn starts), and the `/` menu lists them with their description."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vibe.skills import Skill
    from vibe.tui.controller import Controller

_MAX_HELP = 70


def user_skills(app: Controller) -> list[Skill]:
    extras = getattr(app.runtime, "extras", None) if app.runtime is not None else None
    return extras.skills.user_invocable if extras is not None else []


def is_skill(app: Controller, text: str, builtin: set[str]) -> bool:
    """`text` starts with `/name` of a user-invocable skill that no built-in command shadows."""
    name = text.strip().split(maxsplit=1)[0] if text.strip() else ""
    if name in builtin:
        return False
    return any(f"/{s.name}" == name for s in user_skills(app))


def completions(app: Controller, builtin: set[str]) -> list[tuple[str, str]]:
    out = []
    for skill in user_skills(app):
        if f"/{skill.name}" in builtin:
            continue
        text = skill.description
        help_text = text if len(text) <= _MAX_HELP else text[: _MAX_HELP - 1] + "…"
        out.append((f"/{skill.name}", f"(skill) {help_text}"))
    return out
