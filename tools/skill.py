"""The `skill` tool: load a skill's instructions (SKILL.md without its front matter) and the list
of files bundled beside it. The catalog is plain data handed in by the application."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tools.base import Tool, ToolContext, ToolError, ToolResult

MAX_LISTED_FILES = 50


@dataclass(frozen=True)
class SkillEntry:
    """What the tool knows of one skill: its folder and how to read its body."""

    name: str
    folder: Path
    load: Callable[[], str]


class SkillArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The name of the skill, as listed in the system prompt.")


class SkillTool(Tool):
    name: ClassVar[str] = "skill"
    description: ClassVar[str] = (
        "Load a skill: task-specific instructions listed under Skills in the system prompt. "
        "Returns its instructions and the files bundled with it (read them with read_file)."
    )
    Args: ClassVar[type[BaseModel]] = SkillArgs
    # A barrier: loading a skill grants its allowed-tools for the turn, so calls of the same
    # reply must be checked after (or before) that grant, never racing it.
    access: ClassVar[str] = "any"

    def __init__(
        self,
        catalog: Mapping[str, SkillEntry],
        on_load: Callable[[str], None] | None = None,
    ) -> None:
        """`on_load(name)` is called after a skill was loaded (e.g. to apply its allowed-tools)."""
        self.catalog = dict(catalog)
        self.on_load = on_load

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, SkillArgs)
        entry = self.catalog.get(args.name.strip())
        if entry is None:
            known = ", ".join(sorted(self.catalog)) or "none"
            raise ToolError(f"no skill named {args.name!r}; available skills: {known}")
        body = entry.load().strip()
        files = bundled_files(entry.folder)
        lines = [
            f'<skill name="{entry.name}">',
            body,
            "</skill>",
            f"Base folder of this skill: {entry.folder}",
            "Paths in the skill are relative to it.",
        ]
        if files:
            lines.append("Bundled files:")
            lines += [f"- {f}" for f in files[:MAX_LISTED_FILES]]
            if len(files) > MAX_LISTED_FILES:
                lines.append(f"- ... and {len(files) - MAX_LISTED_FILES} more")
        else:
            lines.append("No other files are bundled with it.")
        if self.on_load is not None:
            self.on_load(entry.name)
        return ToolResult("\n".join(lines), data={"skill": entry.name, "folder": str(entry.folder)})


def bundled_files(folder: Path) -> list[str]:
    """Files under the skill folder but SKILL.md, relative and sorted; hidden ones and symlinked
    folders are left out."""
    out: list[str] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            rel = Path(root, name).relative_to(folder).as_posix()
            if rel != "SKILL.md":
                out.append(rel)
        if len(out) > MAX_LISTED_FILES * 4:
            break
    return sorted(out)
