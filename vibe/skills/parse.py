"""One skill: a folder holding SKILL.md, whose YAML front matter (parsed with PyYAML) names and
describes it. `parse_skill` validates it and raises SkillError saying what is wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SKILL_FILE = "SKILL.md"
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_MAX_NAME = 64
_MAX_DESCRIPTION = 1024
_FENCE = re.compile(r"^---[ \t]*$", re.MULTILINE)


class SkillError(ValueError):
    """A SKILL.md that cannot be used; the message says why."""


@dataclass(frozen=True)
class Skill:
    """A parsed skill. `body` is SKILL.md without its front matter."""

    name: str
    description: str
    path: Path  # the SKILL.md file
    body: str
    license: str | None = None
    compatibility: str | None = None
    user_invocable: bool = True
    model_invocable: bool = True  # false: `disable-model-invocation: true`
    allowed_tools: tuple[str, ...] = ()
    source: str = ""  # which search folder it came from, for messages

    @property
    def folder(self) -> Path:
        return self.path.parent


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter mapping, body); raises SkillError when there is none or it is not YAML."""
    text = text.lstrip("\ufeff")
    if not text.startswith("---"):
        raise SkillError("no YAML front matter (the file must start with a `---` line)")
    fences = list(_FENCE.finditer(text))
    if len(fences) < 2 or fences[0].start() != 0:
        raise SkillError("the YAML front matter is not closed by a `---` line")
    raw, body = text[fences[0].end() : fences[1].start()], text[fences[1].end() :]
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = str(exc).replace("\n", " ")
        raise SkillError(f"invalid YAML front matter: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SkillError("the YAML front matter must be a mapping of keys to values")
    return data, body.lstrip("\n")


def parse_skill(path: Path, source: str = "") -> Skill:
    """Read and validate `path` (a SKILL.md)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SkillError(f"cannot read it ({exc})") from None
    meta, body = split_front_matter(text)
    name = meta.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SkillError("`name` is missing")
    name = name.strip()
    if len(name) > _MAX_NAME or not NAME_RE.match(name):
        raise SkillError(
            f"`name` {name!r} must be lowercase letters, digits and hyphens (at most 64)"
        )
    description = meta.get("description")
    if not isinstance(description, str) or not description.strip():
        raise SkillError("`description` is missing")
    if len(description) > _MAX_DESCRIPTION:
        raise SkillError(f"`description` is longer than {_MAX_DESCRIPTION} characters")
    return Skill(
        name=name,
        description=" ".join(description.split()),
        path=path,
        body=body,
        license=_optional_text(meta, "license"),
        compatibility=_optional_text(meta, "compatibility"),
        user_invocable=_flag(meta, "user-invocable", True),
        model_invocable=not _flag(meta, "disable-model-invocation", False),
        allowed_tools=_tool_list(meta.get("allowed-tools")),
        source=source,
    )


def _optional_text(meta: dict[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int | float):
        raise SkillError(f"`{key}` must be text")
    return str(value)


def _flag(meta: dict[str, Any], key: str, default: bool) -> bool:
    value = meta.get(key, default)
    if not isinstance(value, bool):
        raise SkillError(f"`{key}` must be true or false, got {value!r}")
    return value


def _tool_list(value: Any) -> tuple[str, ...]:
    """`allowed-tools`: a space- or comma-separated string, or a list of strings. A space inside
    parentheses belongs to the entry: `Bash(git log *) read_file`."""
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    if not isinstance(value, str):
        raise SkillError("`allowed-tools` must be a string or a list of strings")
    entries: list[str] = []
    current, depth = "", 0
    for char in value:
        if char in " ,\t\n" and depth == 0:
            if current:
                entries.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    if current:
        entries.append(current)
    return tuple(entries)
