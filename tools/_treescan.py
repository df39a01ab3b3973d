"""What a recursive read (`grep -r`, `rg`, `diff -r`, `grep -R`/`rg -L` following links) reaches.

A recursive read of a folder reads the secret files inside it (`.env`, `id_rsa`, `*.pem`) and,
when it follows symbolic links, whatever they point at. `scan` walks the folder (bounded) and
reports the first secret file or link leading outside the allowed roots.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from tools._pathcheck import is_secret, place, real, secret_name

_LIMIT = 100_000
# Folders of installed third-party code: their `*.pem` files are CA bundles, not the user's
# secrets, and a project's virtualenv must not make every `grep -r` in it ask.
_VENDOR = frozenset(
    {
        ".git",
        "node_modules",
        ".venv",
        "venv",
        "site-packages",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
    }
)
_GREP = frozenset({"grep", "egrep", "fgrep"})


@dataclass(frozen=True)
class Recursion:
    hidden: bool  # reads hidden files (`.env`)
    follow: bool  # follows symbolic links
    include: tuple[str, ...] = ()  # grep's --include globs: only files matching one are read


def recursion(words: tuple[str, ...]) -> Recursion | None:
    """How `words` reads folders recursively, or None when it does not."""
    name, args = words[0], [a for a in words[1:] if a.startswith("-")]
    shorts = "".join(a[1:] for a in args if not a.startswith("--"))
    longs = [a.split("=", 1)[0] for a in args if a.startswith("--")]

    def long(*flags: str) -> bool:
        return any(len(x) > 2 and any(f.startswith(x) for f in flags) for x in longs)

    if name in _GREP:
        deref = "R" in shorts or long("--dereference-recursive")
        recursive = (
            deref or "r" in shorts or long("--recursive") or "--directories=recurse" in words
        )
        include = [
            value
            for index, arg in enumerate(words)
            for value in (
                [arg.split("=", 1)[1]]
                if arg.startswith("--include=")
                else words[index + 1 : index + 2]
                if arg == "--include"
                else []
            )
        ]
        return Recursion(True, deref, tuple(include)) if recursive else None
    if name == "rg":
        hidden = "u" in shorts or "." in shorts or long("--hidden", "--no-ignore")
        return Recursion(hidden, "L" in shorts or long("--follow"))
    if name == "diff" and ("r" in shorts or long("--recursive")):
        return Recursion(True, True)
    follow = "L" in shorts or long("--dereference", "--follow")
    if name in ("ls", "du", "find", "tree") and (follow or (name == "tree" and "l" in shorts)):
        return Recursion(False, True)
    return None


def scan(
    folder: Path, how: Recursion, roots: tuple[Path, ...], protected: Iterable[Path] = ()
) -> tuple[str, str] | None:
    """("outside" or "secret", why) when reading `folder` this way reaches a secret file or
    leaves the roots; None when it does not."""
    protected = tuple(protected)
    names = {p.name.casefold() for p in protected}
    seen = 0
    stack = [folder]
    visited: set[Path] = set()
    while stack:
        current = stack.pop()
        if current in visited:
            continue
        visited.add(current)
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        if is_secret(current / "_", protected):  # inside ~/.ssh, ~/.aws, …
            return "secret", f"reads files that may hold secrets: {current}"
        for entry in entries:
            seen += 1
            if seen > _LIMIT:
                return "secret", f"{folder} holds too many files to check for secrets"
            if entry.name.startswith(".") and not how.hidden:
                continue
            path = Path(entry.path)
            try:
                link = entry.is_symlink()
                if link and not how.follow:
                    continue
                target = real(path) if link else path
                if link and place(target, roots).root is None:
                    return "outside", f"the link {path} leads outside the working directory"
                if entry.is_dir(follow_symlinks=how.follow):
                    if entry.name not in _VENDOR:
                        stack.append(target)
                elif _named_secret(entry.name, names) and (
                    not how.include or any(fnmatchcase(entry.name, g) for g in how.include)
                ):
                    return "secret", f"reads a file that may hold secrets: {path}"
            except OSError:
                continue
    return None


def _named_secret(name: str, protected: set[str]) -> bool:
    """A cheap first test by name (`is_secret` resolves the home folder on every call)."""
    return name.casefold() in protected or secret_name(name)
