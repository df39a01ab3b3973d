"""Finding skills. Search order, the first skill of a name wins: `skill_paths` from the config,
`.vibe/skills/` and `.agents/skills/` of a trusted project (from the working folder up to the
project root, nearest first), `$VIBE_HOME/skills/`, `~/.agents/skills/`. A broken skill (bad
YAML, no description, a name used twice in one folder) is skipped with one warning naming its
file; nothing here ever stops vibe."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vibe.config.trust import project_root
from vibe.skills.parse import SKILL_FILE, Skill, SkillError, parse_skill

log = logging.getLogger(__name__)

PROJECT_SKILL_DIRS = (Path(".vibe") / "skills", Path(".agents") / "skills")


@dataclass
class SkillSet:
    """The skills found (by name, in search order) and the warnings about skipped ones."""

    skills: dict[str, Skill] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def get(self, name: str) -> Skill | None:
        return self.skills.get(name)

    @property
    def model_invocable(self) -> list[Skill]:
        return [s for s in self.skills.values() if s.model_invocable]

    @property
    def user_invocable(self) -> list[Skill]:
        return [s for s in self.skills.values() if s.user_invocable]


def search_dirs(
    cwd: Path,
    home: Path,
    *,
    skill_paths: Iterable[str | Path] = (),
    trusted: bool = False,
    user_home: Path | None = None,
) -> list[Path]:
    """The folders searched for skills, highest precedence first (existing or not)."""
    cwd = cwd.resolve()
    dirs = [_expand(p, cwd) for p in skill_paths]
    if trusted:
        root = project_root(cwd)
        folders = [cwd, *(p for p in cwd.parents if p.is_relative_to(root))]
        if not cwd.is_relative_to(root):
            folders = [cwd]
        dirs += [folder / sub for folder in folders for sub in PROJECT_SKILL_DIRS]
    dirs.append(home / "skills")
    dirs.append((user_home or Path.home()) / ".agents" / "skills")
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def _expand(value: str | Path, cwd: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else cwd / path


def discover(dirs: Iterable[Path]) -> SkillSet:
    """Every skill in `dirs` (each a folder of skill folders, or one skill folder itself)."""
    found = SkillSet()
    for folder in dirs:
        seen_here: dict[str, Path] = {}
        for path in _skill_files(folder):
            try:
                skill = parse_skill(path, source=str(folder))
            except SkillError as exc:
                found.warnings.append(f"skipped skill {path}: {exc}")
                continue
            if skill.name in seen_here:
                found.warnings.append(
                    f"skipped skill {path}: the name {skill.name!r} is already used by "
                    f"{seen_here[skill.name]}"
                )
                continue
            seen_here[skill.name] = path
            if skill.name in found.skills:  # a folder searched earlier wins
                log.info(
                    "skill %s at %s is shadowed by %s",
                    skill.name,
                    path,
                    found.skills[skill.name].path,
                )
                continue
            found.skills[skill.name] = skill
    for warning in found.warnings:
        log.warning("%s", warning)
    return found


def _skill_files(folder: Path) -> list[Path]:
    try:
        if (folder / SKILL_FILE).is_file():
            return [folder / SKILL_FILE]
        if not folder.is_dir():
            return []
        children = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        log.warning("cannot list skills in %s: %s", folder, exc)
        return []
    return [c / SKILL_FILE for c in children if (c / SKILL_FILE).is_file()]


def load_skills(
    cwd: Path,
    home: Path,
    *,
    skill_paths: Iterable[str | Path] = (),
    trusted: bool = False,
    user_home: Path | None = None,
) -> SkillSet:
    """search_dirs + discover."""
    dirs = search_dirs(cwd, home, skill_paths=skill_paths, trusted=trusted, user_home=user_home)
    return discover(dirs)
