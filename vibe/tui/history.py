"""Persistent input history (↑/↓ in the prompt), one JSON string per line under $VIBE_HOME."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

MAX_ENTRIES = 1000


class InputHistory:
    """Entries oldest first; a cursor walks them while the user browses with ↑/↓."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: list[str] = _read(path) if path else []
        self._cursor: int | None = None
        self._draft = ""

    def open(self, path: Path) -> None:
        """Attach the file once known (after the first frame); keeps what was typed before."""
        early, self.path, self.entries = self.entries, path, _read(path)
        for text in early:
            self.add(text)

    def add(self, text: str) -> None:
        self._cursor = None
        if not text.strip() or (self.entries and self.entries[-1] == text):
            return
        self.entries.append(text)
        if self.path is None:
            return
        if len(self.entries) > MAX_ENTRIES * 2:
            self.entries = self.entries[-MAX_ENTRIES:]
            _rewrite(self.path, self.entries)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(text) + "\n")

    def previous(self, current: str) -> str | None:
        """The entry before the cursor (None at the oldest); remembers the draft being typed."""
        if not self.entries:
            return None
        if self._cursor is None:
            self._draft, self._cursor = current, len(self.entries)
        if self._cursor == 0:
            return None
        self._cursor -= 1
        return self.entries[self._cursor]

    def next(self) -> str | None:
        """The entry after the cursor, the saved draft past the newest, None when not browsing."""
        if self._cursor is None:
            return None
        self._cursor += 1
        if self._cursor >= len(self.entries):
            self._cursor = None
            return self._draft
        return self.entries[self._cursor]

    def reset(self) -> None:
        self._cursor = None


def _read(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out: list[str] = []
    for line in lines[-MAX_ENTRIES:]:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a crash must not lose the rest
        if isinstance(value, str):
            out.append(value)
    return out


def _rewrite(path: Path, entries: list[str]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(e) + "\n" for e in entries)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
