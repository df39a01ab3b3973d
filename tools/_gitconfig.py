"""Whether a repository's own git config can make a "read-only" git command run programs.

A cloned or edited `.git/config` may set `core.fsmonitor`, `diff.external`, a textconv or a
filter driver, an include, … which `git status`/`git diff`/`git log -p` then run. We find the
repository's git dir (walking up for `.git`, following `gitdir:` files and `commondir`), read its
config files (and its submodules'), and list the keys that may run something.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_MAX_BYTES = 1 << 20
_MAX_MODULES = 50
# Sections whose every key is dangerous, and key names (the last part) that run something.
_SECTIONS = frozenset({"filter", "include", "includeif", "uploadpack", "trace2", "protocol"})
_NAMES = re.compile(
    r"(command|program|cmd|helper|textconv|driver|external|editor|hook|hookspath|fsmonitor|"
    r"gitproxy|askpass|sshcommand|uploadpack|receivepack)$"
)
_FALSE = frozenset({"", "false", "no", "off", "0"})
_SECTION = re.compile(r'^\s*\[\s*([^\]\s"]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]\s*(.*)$')
_KEY = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$")


def find_git_dir(start: Path) -> Path | None:
    """The git dir of the repository containing `start` (None: not in a repository)."""
    try:
        folder = Path(os.path.realpath(start))
    except (OSError, ValueError):
        return None
    for candidate in (folder, *folder.parents):
        dot = candidate / ".git"
        try:
            if dot.is_dir():
                return dot
            if dot.is_file():
                text = dot.read_text(encoding="utf-8", errors="replace")[:4096]
                match = re.match(r"\s*gitdir:\s*(.+?)\s*$", text, re.M)
                if match:
                    return Path(os.path.realpath(candidate / match.group(1)))
                return dot  # unreadable pointer: its own folder, which has no config
            if candidate.name.endswith(".git") and (candidate / "config").is_file():
                return candidate  # a bare repository
        except (OSError, ValueError):
            return None
    return None


def config_files(git_dir: Path) -> list[Path]:
    """config and config.worktree of the git dir, its common dir and its submodules."""
    dirs = [git_dir]
    try:
        common = (git_dir / "commondir").read_text(encoding="utf-8").strip()
        if common:
            dirs.append(Path(os.path.realpath(git_dir / common)))
    except (OSError, ValueError):
        pass
    for base in list(dirs):
        modules = base / "modules"
        if modules.is_dir():
            count = 0
            for dirpath, dirnames, filenames in os.walk(modules):
                if "config" in filenames and "HEAD" in filenames:
                    dirs.append(Path(dirpath))
                    count += 1
                dirnames[:] = [d for d in dirnames if d not in ("objects", "refs", "logs")]
                if count >= _MAX_MODULES:
                    break
    files = []
    for folder in dirs:
        for name in ("config", "config.worktree"):
            if (folder / name).is_file():
                files.append(folder / name)
    return files


def dangerous_keys(text: str) -> list[str]:
    """Keys (`section.sub.name`, lower case) of a git config text that may run a program."""
    found: list[str] = []
    section, sub = "", ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        header = _SECTION.match(stripped)
        if header:
            name = header.group(1).casefold()
            section, _, dotted = name.partition(".")
            sub = header.group(2) if header.group(2) is not None else dotted
            stripped = header.group(3).strip()
            if section in _SECTIONS:
                found.append(f"{section}.{sub}".strip("."))
            if not stripped or stripped[0] in "#;":
                continue
        key = _KEY.match(stripped)
        if key is None:
            if section:  # a line git may read in a way we do not: be careful
                found.append(f"{section}.{sub}.?".replace("..", "."))
            continue
        name = key.group(1).casefold()
        value = (key.group(2) or "true").strip().strip('"').casefold()
        full = ".".join(p for p in (section, sub.casefold(), name) if p)
        if section in _SECTIONS or _NAMES.search(name):
            if name == "fsmonitor" and value in _FALSE:
                continue
            found.append(full)
    return found


def repo_dangers(start: Path, git_dir: Path | None = None) -> list[str]:
    """Dangerous keys in the config of the repository at `start` (or of `git_dir`)."""
    git_dir = git_dir or find_git_dir(start)
    if git_dir is None:
        return []
    found: list[str] = []
    for file in config_files(git_dir):
        try:
            with open(file, encoding="utf-8", errors="replace") as handle:
                text = handle.read(_MAX_BYTES)
        except OSError:
            continue
        found += dangerous_keys(text)
    return list(dict.fromkeys(found))
