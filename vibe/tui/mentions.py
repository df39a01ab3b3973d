"""`@path` mentions: completion candidates (git-aware) and expansion into file contents."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

MAX_FILES = 20_000
MAX_FILE_BYTES = 100_000
_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
MENTION_RE = re.compile(r"(?<![\w@])@([\w./~+-][^\s]*)")


def list_files(root: Path) -> list[str]:
    """Project files relative to root: `git ls-files` (tracked + untracked, not ignored) in a
    repository, else a bounded walk that skips hidden and vendored folders."""
    try:
        proc = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if proc.returncode == 0:
            return sorted(set(proc.stdout.splitlines()))[:MAX_FILES]
    except (OSError, subprocess.TimeoutExpired):
        pass
    out: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        rel = Path(folder).relative_to(root)
        out.extend(str(rel / f) if str(rel) != "." else f for f in sorted(files))
        if len(out) >= MAX_FILES:
            break
    return out[:MAX_FILES]


def complete_path(fragment: str, files: list[str], limit: int = 12) -> list[str]:
    """Files matching what follows the `@`: path prefix first, then name prefix, then substring."""
    frag = fragment.lower()
    prefix, name, sub = [], [], []
    for f in files:
        low = f.lower()
        if low.startswith(frag):
            prefix.append(f)
        elif low.rsplit("/", 1)[-1].startswith(frag):
            name.append(f)
        elif frag in low:
            sub.append(f)
        if len(prefix) >= limit:
            break
    return (prefix + name + sub)[:limit]


def expand_mentions(text: str, root: Path) -> str:
    """The prompt for the model: the user's text followed by the content of each @file."""
    blocks: list[str] = []
    seen: set[str] = set()
    for match in MENTION_RE.finditer(text):
        rel = match.group(1).rstrip(".,;:!?)")
        if rel in seen:
            continue
        path = (root / rel).expanduser()
        if not path.is_file():
            continue
        seen.add(rel)
        try:
            data = path.read_bytes()
        except OSError:
            continue
        body = data[:MAX_FILE_BYTES].decode("utf-8", errors="replace")
        note = "" if len(data) <= MAX_FILE_BYTES else f"\n[truncated at {MAX_FILE_BYTES} bytes]"
        blocks.append(f'<file path="{rel}">\n{body}{note}\n</file>')
    if not blocks:
        return text
    return text + "\n\n" + "\n\n".join(blocks)
