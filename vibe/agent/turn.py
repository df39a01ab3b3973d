"""What one user turn adds around Agent.run for skills and plan mode: `/name args` expanded into
the skill's message, the skill's `allowed-tools` allowed for that turn only, pending plan-mode
reminders appended to the prompt; and the tools that come with them (skill, ask_user_question,
exit_plan_mode). Headless and the TUI both run their turns through TurnExtras.run."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vibe.agent.nested_rules import NestedRules
from vibe.agent.plan import (
    enter_reminder,
    exit_review,
    is_plan_mode,
    plan_path,
    transition,
    with_reminders,
)
from vibe.skills import SkillSet, TurnRules, expand, tool_rules

if TYPE_CHECKING:
    from tools.base import Tool
    from vibe.agent.interaction import Interaction
    from vibe.agent.loop import Agent
    from vibe.config import LoadedConfig, ModeConfig
    from vibe.events import Event
    from vibe.session import Session


@dataclass
class TurnExtras:
    skills: SkillSet
    plan_file: Path
    interaction: Interaction | None = None  # None: headless (no questions, no plan review)
    reminders: list[str] = field(default_factory=list)  # sent with the next prompt
    rules: TurnRules | None = None  # the running turn's extra allow rules
    # Adds a subfolder's AGENTS.md to a tool result once (trusted folders only).
    annotate: Callable[[str, str, str, str], str] | None = None

    @property
    def interactive(self) -> bool:
        return self.interaction is not None

    def start(self, mode: ModeConfig) -> None:
        """A session that starts in plan mode is told so with its first prompt."""
        if is_plan_mode(mode):
            self.reminders.append(enter_reminder(self.plan_file, self.interactive))

    def mode_changed(self, old: ModeConfig, new: ModeConfig) -> None:
        note = transition(old, new, self.plan_file, self.interactive)
        if note is None:
            return
        if self.reminders:  # the opposite switch was never sent: both cancel out
            self.reminders.clear()
        else:
            self.reminders.append(note)

    def read_roots(self) -> tuple[Path, ...]:
        """The skill folders read_file/grep may read (bundled files), resolved."""
        return tuple(Path(os.path.realpath(s.folder)) for s in self.skills.skills.values())

    def tools_for(self, mode: ModeConfig) -> dict[str, Tool]:
        from tools.ask_user_question import AskUserQuestionTool
        from tools.exit_plan_mode import ExitPlanModeTool
        from tools.skill import SkillEntry, SkillTool

        tools: dict[str, Tool] = {}
        catalog = {
            s.name: SkillEntry(s.name, s.folder, _loader(s.body))
            for s in self.skills.model_invocable
        }
        if catalog:
            tools["skill"] = SkillTool(catalog, on_load=self._loaded)
        if self.interaction is not None:
            tools["ask_user_question"] = AskUserQuestionTool(self.interaction.ask_questions)
            if is_plan_mode(mode):
                review = exit_review(self.interaction, self.plan_file)
                tools["exit_plan_mode"] = ExitPlanModeTool(review)
        return tools

    def _loaded(self, name: str) -> None:
        skill = self.skills.get(name)
        if skill is not None and self.rules is not None:
            self.rules.add(tool_rules(skill.allowed_tools))

    async def run(self, agent: Agent, prompt: str) -> AsyncIterator[Event]:
        """agent.run with the skill expanded, the reminders sent and the turn's rules held."""
        invocation = expand(prompt, self.skills)
        text = with_reminders(invocation.prompt if invocation else prompt, self.reminders)
        self.reminders.clear()
        self.rules = TurnRules(agent.session_rules)
        if invocation is not None:
            self.rules.add(invocation.rules)
        try:
            async for event in agent.run(text):
                yield event
        finally:
            self.rules.end()
            self.rules = None


def turn_extras(
    loaded: LoadedConfig,
    cwd: Path,
    mode: ModeConfig,
    session: Session,
    interaction: Interaction | None,
) -> TurnExtras:
    """Skills found for `cwd` (their warnings go to session.warnings, which both UIs show), the
    session's plan file, the lazy AGENTS.md of subfolders in a trusted folder."""
    from vibe.skills import load_skills

    skills = load_skills(
        cwd, loaded.home, skill_paths=loaded.config.skill_paths, trusted=loaded.trusted
    )
    session.warnings.extend(skills.warnings)
    extras = TurnExtras(skills, plan_path(loaded.home, session.id), interaction)
    if loaded.trusted:
        extras.annotate = NestedRules(cwd).annotate
    extras.start(mode)
    return extras


def _loader(body: str) -> Callable[[], str]:
    return lambda: body


async def run_turn(run: object, prompt: str) -> AsyncIterator[Event]:
    """`run.extras.run(run.agent, prompt)`, or plain agent.run for a Run without extras."""
    extras = getattr(run, "extras", None)
    agent = run.agent  # type: ignore[attr-defined]
    stream = extras.run(agent, prompt) if extras is not None else agent.run(prompt)
    async for event in stream:
        yield event


async def headless_turn(run: object, prompt: str) -> AsyncIterator[Event]:
    """run_turn for `vibe run`: in plan mode the final event carries the plan as its text."""
    from vibe.agent.plan import headless_result
    from vibe.events import TurnFinished

    extras = getattr(run, "extras", None)
    async for event in run_turn(run, prompt):
        if isinstance(event, TurnFinished) and extras is not None:
            event = headless_result(event, extras.plan_file, run.mode)  # type: ignore[attr-defined]
        yield event
