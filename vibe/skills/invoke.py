"""Using skills: the system prompt's list, `/name args` expanded into the user message, and the
skill's `allowed-tools` as permission rules that hold only while its turn runs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from vibe.skills.discovery import SkillSet
from vibe.skills.parse import Skill

Rule = tuple[str, str]  # (tool name, pattern), as tools.permissions session rules

# Claude Code / Mistral Vibe tool names in `allowed-tools` → ours.
_TOOL_ALIASES = {
    "bash": "bash",
    "read": "read_file",
    "read_file": "read_file",
    "write": "write_file",
    "write_file": "write_file",
    "edit": "edit",
    "multiedit": "edit",
    "search_replace": "edit",
    "grep": "grep",
    "todo": "todo",
    "todowrite": "todo",
    "webfetch": "web_fetch",
    "web_fetch": "web_fetch",
}
_ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\((.*)\))?$", re.DOTALL)


@dataclass(frozen=True)
class Invocation:
    """A `/name args` prompt resolved to its skill: the text to send and the turn's rules."""

    skill: Skill
    arguments: str
    prompt: str
    rules: tuple[Rule, ...]


def skills_prompt(skills: Iterable[Skill]) -> str:
    """The system prompt's compact list of the skills the model may load ('' when none)."""
    lines = [f"- {s.name}: {s.description}" for s in skills if s.model_invocable]
    if not lines:
        return ""
    return (
        "\n# Skills\n"
        "Skills hold instructions for specific tasks. When the task matches one, load it with "
        "the `skill` tool first and follow it.\n" + "\n".join(lines) + "\n"
    )


def tool_rules(entries: Iterable[str]) -> tuple[Rule, ...]:
    """`allowed-tools` entries → (tool, pattern): `Bash(git log:*)` → ("bash", "git log *"),
    `Read` → ("read_file", "*"). Entries that do not parse are ignored."""
    rules: list[Rule] = []
    for entry in entries:
        match = _ENTRY.match(entry.strip())
        if match is None:
            continue
        name = _TOOL_ALIASES.get(match.group(1).lower(), match.group(1))
        pattern = (match.group(2) or "").strip() or "*"
        if pattern.endswith(":*"):  # Claude Code's prefix form
            pattern = pattern[:-2].rstrip() + " *"
        rules.append((name, pattern))
    return tuple(rules)


def expand(text: str, skills: SkillSet) -> Invocation | None:
    """`/name args` naming a user-invocable skill → the message that sends it; else None."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    head, _, arguments = stripped[1:].partition(" ")
    if "\n" in head:
        head, _, rest = head.partition("\n")
        arguments = f"{rest} {arguments}".strip()
    skill = skills.get(head)
    if skill is None or not skill.user_invocable:
        return None
    arguments = arguments.strip()
    return Invocation(
        skill, arguments, skill_message(skill, arguments), tool_rules(skill.allowed_tools)
    )


def skill_message(skill: Skill, arguments: str) -> str:
    """The user message for `/name arguments`: the body (with `$ARGUMENTS` filled in) and the
    arguments, as Claude Code and Mistral Vibe send a skill command."""
    body = skill.body.strip()
    if "$ARGUMENTS" in body:
        body = body.replace("$ARGUMENTS", arguments)
        tail = ""
    else:
        tail = f"\n\nArguments: {arguments}" if arguments else ""
    command = f"/{skill.name} {arguments}".rstrip()
    return (
        f"{command}\n\n"
        f'<skill name="{skill.name}" base_dir="{skill.folder}">\n{body}\n</skill>{tail}'
    )


class TurnRules:
    """Rules added to a live rule list (the agent's session_rules) for one turn only."""

    def __init__(self, target: list[Rule]) -> None:
        self.target = target
        self._added: list[Rule] = []

    def add(self, rules: Iterable[Rule]) -> None:
        for rule in rules:
            self.target.append(rule)
            self._added.append(rule)

    def end(self) -> None:
        """Take back exactly what was added (a rule the user also allowed stays once)."""
        for rule in self._added:
            try:
                self.target.remove(rule)
            except ValueError:
                pass
        self._added.clear()
