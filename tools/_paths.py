"""Path helpers shared by the file tools and the permission model: resolve, display, suggest."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from tools.base import ToolError

# Folders not worth walking when looking for a file the model misnamed.
_SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", "venv", ".mypy_cache", ".tox"}
_WALK_LIMIT = 5000


def resolve(cwd: Path, path: str) -> Path:
    """`path` made absolute against `cwd` (with `~` expanded) and symlinks resolved."""
    if not path.strip():
        raise ToolError("path is empty")
    if "\0" in path:
        raise ToolError(f"path {path!r} contains a NUL byte; no file can have that name")
    expanded = Path(os.path.expanduser(path))
    return Path(os.path.realpath(cwd / expanded))


def is_inside(path: Path, root: Path) -> bool:
    """Whether resolved `path` is `root` or below it (root is resolved here)."""
    return path.is_relative_to(Path(os.path.realpath(root)))


def display(cwd: Path, path: Path) -> str:
    """`path` relative to cwd when inside it, else absolute; always with forward slashes."""
    root = Path(os.path.realpath(cwd))
    if path.is_relative_to(root):
        return path.relative_to(root).as_posix() or "."
    return path.as_posix()


def missing_file_error(cwd: Path, raw: str, resolved: Path) -> ToolError:
    """A ToolError for a path that does not exist, suggesting similar existing names."""
    suggestions = similar_paths(cwd, resolved)
    message = f"file not found: {raw}"
    if suggestions:
        message += "; did you mean " + ", ".join(suggestions) + "?"
    return ToolError(message)


def similar_paths(cwd: Path, missing: Path, limit: int = 5) -> list[str]:
    """Existing files whose name is close to `missing`'s, nearby first, then anywhere in cwd."""
    found: list[str] = []
    parent = missing.parent
    while not parent.is_dir() and parent != parent.parent:
        parent = parent.parent
    try:
        names = [entry.name for entry in os.scandir(parent)]
    except OSError:
        names = []
    for name in difflib.get_close_matches(missing.name, names, n=limit, cutoff=0.6):
        found.append(display(cwd, parent / name))
    root = Path(os.path.realpath(cwd))
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        seen += len(filenames)
        if missing.name in filenames:
            candidate = display(cwd, Path(dirpath) / missing.name)
            if candidate not in found:
                found.append(candidate)
        if len(found) >= limit or seen > _WALK_LIMIT:
            break
    return found[:limit]
