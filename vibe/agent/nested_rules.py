"""AGENTS.md files below the working folder, added lazily: the first successful read_file, grep
or edit touching a path under such a folder gets that folder's AGENTS.md appended to its result,
once per session, so the model learns a subproject's rules when it enters it. Only in a trusted
folder; the working folder's own AGENTS.md (and those above it) are in the system prompt."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from vibe.agent.plan import reminder

log = logging.getLogger(__name__)

AGENTS_FILE = "AGENTS.md"
TOOLS = frozenset({"read_file", "grep", "edit"})
_MAX_BYTES = 32_000


class NestedRules:
    def __init__(self, cwd: Path) -> None:
        self.cwd = Path(os.path.realpath(cwd))
        self.seen: set[Path] = set()

    def annotate(self, tool: str, raw_arguments: str, status: str, text: str) -> str:
        """`text` with the AGENTS.md files not yet shown between cwd (exclusive) and the path."""
        if tool not in TOOLS or status != "ok":
            return text
        try:
            files = self.new_files(_path_argument(raw_arguments))
            notes = [_note(f) for f in files]
        except (OSError, ValueError) as exc:
            log.debug("nested AGENTS.md lookup failed: %s", exc)
            return text
        return "\n\n".join([text, *(n for n in notes if n)])

    def new_files(self, raw: str) -> list[Path]:
        """AGENTS.md files in the folders from below cwd down to `raw`'s folder, outermost
        first, that were not added before (each is then remembered)."""
        if "\x00" in raw:
            return []
        target = Path(os.path.realpath(self.cwd / os.path.expanduser(raw)))
        if target == self.cwd or not target.is_relative_to(self.cwd):
            return []
        folder = target if target.is_dir() else target.parent
        chain = [folder, *folder.parents]
        chain = [f for f in chain if f.is_relative_to(self.cwd) and f != self.cwd][::-1]
        out: list[Path] = []
        for f in chain:
            candidate = f / AGENTS_FILE
            if candidate not in self.seen and candidate.is_file():
                self.seen.add(candidate)
                out.append(candidate)
        return out


def _path_argument(raw_arguments: str) -> str:
    try:
        args = json.loads(raw_arguments or "{}")
    except (ValueError, RecursionError):
        return "."
    path = args.get("path") if isinstance(args, dict) else None
    return path if isinstance(path, str) and path else "."


def _note(path: Path) -> str:
    body = path.read_text(encoding="utf-8", errors="replace")[:_MAX_BYTES].strip()
    if not body:
        return ""
    return reminder(
        f"Instructions from {path} (they apply to the files under {path.parent}):\n{body}"
    )
