"""The system prompt: role and rules (vibe/prompts/system.md), the tools, the environment
(cwd, extra folders, OS, date, git branch/status/recent commits) and, in a trusted folder, the
AGENTS.md files from the trusted root (the git root, else cwd) down to cwd, never above it."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from vibe.config.trust import project_root

AGENTS_FILE = "AGENTS.md"
_MAX_STATUS_LINES = 30
_MAX_AGENTS_BYTES = 32_000


def build_system_prompt(
    cwd: Path,
    tool_names: Iterable[str] = (),
    *,
    trusted: bool = False,
    mode_prompt: str | None = None,
    today: datetime.date | None = None,
    root: Path | None = None,
    extra_dirs: Iterable[Path] = (),
    home: Path | None = None,
    skills_section: str = "",
) -> str:
    """The whole system prompt for a run in `cwd`; `mode_prompt` (a mode's own) replaces the rules.
    `root`: the trusted root AGENTS.md files are read from (default: the git root, else cwd);
    `extra_dirs`: the --add-dir folders the tools may also work in; `home`: $VIBE_HOME, whose
    AGENTS.md (the user's own instructions) is always read; `skills_section`: the skills the
    model may load (vibe.skills.skills_prompt), shown when the `skill` tool is offered."""
    tool_names = list(tool_names)
    if mode_prompt is None:
        names = list(tool_names)
        tools = f"Available tools: {', '.join(names)}." if names else "No tools are available."
        rules = resources.files("vibe.prompts").joinpath("system.md").read_text("utf-8")
        text = rules.format(tool_list=tools).rstrip() + "\n"
    else:
        text = mode_prompt.rstrip() + "\n"
    text += (
        "\n# Environment\n"
        f"- Working directory: {cwd}\n"
        f"{_extra_dirs_line(extra_dirs)}"
        f"- Operating system: {platform.system()} {platform.release()}\n"
        f"- Date: {(today or datetime.date.today()).isoformat()}\n"
        f"{git_summary(cwd)}\n"
    )
    if skills_section and "skill" in tool_names:
        text += skills_section
    user_file = home / AGENTS_FILE if home is not None else None
    if user_file is not None and user_file.is_file():  # $VIBE_HOME/AGENTS.md: always read
        body = user_file.read_text("utf-8", errors="replace")[:_MAX_AGENTS_BYTES]
        text += f"\n# User instructions ({user_file})\n{body.strip()}\n"
    if trusted:
        for path in agents_files(cwd, root):
            body = path.read_text("utf-8", errors="replace")[:_MAX_AGENTS_BYTES]
            text += f"\n# Project instructions ({path})\n{body.strip()}\n"
    return text


def _extra_dirs_line(extra_dirs: Iterable[Path]) -> str:
    dirs = [str(d) for d in extra_dirs]
    if not dirs:
        return ""
    return f"- Additional folders you may work in: {', '.join(dirs)}\n"


def agents_files(cwd: Path, root: Path | None = None) -> list[Path]:
    """AGENTS.md files from `root` (default: the git root, else cwd) down to cwd, outermost
    first; nothing above the root, and only cwd itself when cwd is not below the root."""
    cwd = cwd.resolve()
    root = project_root(cwd) if root is None else root.resolve()
    if not cwd.is_relative_to(root):
        root = cwd
    found: list[Path] = []
    for folder in (cwd, *cwd.parents):
        candidate = folder / AGENTS_FILE
        if candidate.is_file():
            found.append(candidate)
        if folder == root:
            break
    return found[::-1]


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=3,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.rstrip() if out.returncode == 0 else None


def git_summary(cwd: Path) -> str:
    """Branch, short status and recent commits, or a line saying this is not a git repository."""
    branch = _git(cwd, "rev-parse", "--abbrev-ref", "HEAD")
    if branch is None:
        return "- Git: not a git repository"
    lines = [f"- Git branch: {branch}"]
    status = (_git(cwd, "status", "--short") or "").splitlines()
    if status:
        shown = status[:_MAX_STATUS_LINES]
        more = len(status) - len(shown)
        lines.append("- Git status:\n" + "\n".join(f"    {s}" for s in shown))
        if more:
            lines.append(f"    ... and {more} more")
    else:
        lines.append("- Git status: clean")
    log = _git(cwd, "log", "--oneline", "-5", "--no-decorate")
    if log:
        lines.append("- Recent commits:\n" + "\n".join(f"    {c}" for c in log.splitlines()))
    return "\n".join(lines)
