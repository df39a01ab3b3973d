"""The files grep searches: `git ls-files` inside a repository, else a walk honouring .gitignore."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

_GIT_TIMEOUT_S = 30


def list_files(root: Path) -> Iterator[Path]:
    """Files under `root` that git would not ignore, in sorted order; `.git` is never listed."""
    tracked = _git_files(root)
    if tracked is not None:
        for rel in sorted(tracked):
            path = root / rel
            if path.is_file():
                yield path
        return
    yield from _walk(root, [])


def _git_files(root: Path) -> list[str] | None:
    try:
        proc = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None  # not a repository (or git is broken): walk instead
    names = proc.stdout.decode("utf-8", errors="surrogateescape").split("\0")
    return list(dict.fromkeys(name for name in names if name))


class _Rule:
    """One .gitignore line, relative to the folder holding that .gitignore."""

    def __init__(self, base: Path, line: str) -> None:
        self.negate = line.startswith("!")
        line = line[1:] if self.negate else line
        self.dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        self.base = base
        prefix = "" if anchored else "(?:.*/)?"
        self.regex = re.compile(prefix + _translate(line) + r"(?:/.*)?\Z", re.DOTALL)

    def matches(self, path: Path, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        try:
            rel = path.relative_to(self.base).as_posix()
        except ValueError:
            return False
        return self.regex.match(rel) is not None


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _read_rules(folder: Path) -> list[_Rule]:
    try:
        text = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if line and not line.startswith("#"):
            rules.append(_Rule(folder, line))
    return rules


def _ignored(rules: list[_Rule], path: Path, is_dir: bool) -> bool:
    ignored = False
    for rule in rules:  # the last matching rule decides, as in git
        if rule.matches(path, is_dir):
            ignored = not rule.negate
    return ignored


def _walk(folder: Path, inherited: list[_Rule]) -> Iterator[Path]:
    rules = inherited + _read_rules(folder)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name == ".git":
            continue
        path = Path(entry.path)
        is_dir = entry.is_dir(follow_symlinks=False)
        if _ignored(rules, path, is_dir):
            continue
        if is_dir:
            yield from _walk(path, rules)
        elif entry.is_file():
            yield path


def glob_matcher(glob: str | None) -> re.Pattern[str] | None:
    """A regex for a glob such as `*.py`, `src/**/*.ts` or `*.{ts,tsx}` (brace lists allowed)."""
    if not glob:
        return None
    options = _expand_braces(glob)
    parts = [
        _translate(option.lstrip("/")) if "/" in option else "(?:.*/)?" + _translate(option)
        for option in options
    ]
    return re.compile("(?:" + "|".join(parts) + r")\Z", re.DOTALL)


def _expand_braces(glob: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", glob)
    if match is None:
        return [glob]
    head, tail = glob[: match.start()], glob[match.end() :]
    return [x for alt in match.group(1).split(",") for x in _expand_braces(head + alt + tail)]
