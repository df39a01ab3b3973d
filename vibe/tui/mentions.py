"""`@path` mentions: completion candidates (git-aware), expansion into file contents, and
@image attachments (vibe.images); other binary files are never inlined."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools._sniff import Kind, sniff

MAX_FILES = 20_000
MAX_FILE_BYTES = 100_000
_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
# (path, as written, what it holds: tools._sniff) → handled (attached or refused)
Attach = Callable[[Path, str, Kind], bool]
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


def expand_mentions(text: str, root: Path, attach: Attach | None = None) -> str:
    """The prompt for the model: the user's text followed by the content of each text @file.
    Any other file is never inlined: `attach(path, shown, kind)` decides (an image is attached to
    a model that takes images, anything else gets a notice: attach_mentions); without
    `attach`, binary files are left out."""
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
            kind, _ = sniff(path)
            if attach is not None and attach(path, rel, kind):
                continue
            if kind != "text":
                continue
            data = path.read_bytes()
        except OSError:
            continue
        body = data[:MAX_FILE_BYTES].decode("utf-8", errors="replace")
        note = "" if len(data) <= MAX_FILE_BYTES else f"\n[truncated at {MAX_FILE_BYTES} bytes]"
        blocks.append(f'<file path="{rel}">\n{body}{note}\n</file>')
    if not blocks:
        return text
    return text + "\n\n" + "\n\n".join(blocks)


def attach_mentions(text: str, root: Path, agent: Any) -> tuple[str, list[str]]:
    """expand_mentions for `agent`: @images (png, jpg, gif, webp) are attached to its next
    prompt when its model takes images; other binary files and images for a model that takes
    none are not sent, with a one-line notice each for the user. Returns (prompt, notices)."""
    from vibe.images import mention_attachment

    images: list[Any] = []
    notices: list[str] = []

    def attach(path: Path, shown: str, kind: Kind) -> bool:
        image, note = mention_attachment(path, shown, kind, agent.settings.model, agent.provider)
        if image is not None:
            images.append(image)
        if note is not None:
            notices.append(note)
        return image is not None or note is not None

    prompt = expand_mentions(text, root, attach)
    agent.attach(images)
    return prompt, notices
