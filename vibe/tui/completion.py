"""What the prompt completes: `/command` at the start of the input, `@path` anywhere; both
match fuzzily (vibe.tui.fuzzy)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vibe.tui.fuzzy import rank, rank_paths
from vibe.tui.mentions import list_files

_FILES_TTL_S = 10.0


@dataclass(frozen=True)
class Candidates:
    """Replace columns [start, end) of line `row` with one of `items` (value, description)."""

    row: int
    start: int
    end: int
    items: list[tuple[str, str]]
    kind: str  # command | path


class Completer:
    def __init__(self, commands: Callable[[], list[tuple[str, str]]], root: Path) -> None:
        """`commands` is called on the first `/` completion: the command table loads late."""
        self._commands_of = commands
        self._commands: list[tuple[str, str]] | None = None
        self.root = root
        self._files: list[str] = []
        self._files_at = -_FILES_TTL_S

    @property
    def commands(self) -> list[tuple[str, str]]:
        # Not cached: the session's skills join the commands once the agent is ready.
        self._commands = self._commands_of()
        return self._commands

    def files(self) -> list[str]:
        now = time.monotonic()
        if now - self._files_at > _FILES_TTL_S:
            self._files, self._files_at = list_files(self.root), now
        return self._files

    def complete(self, text: str, row: int, col: int) -> Candidates | None:
        lines = text.split("\n")
        if row >= len(lines):
            return None
        line = lines[row]
        start = col
        while start > 0 and not line[start - 1].isspace():
            start -= 1
        token = line[start:col]
        if row == 0 and start == 0 and token.startswith("/") and len(lines) == 1:
            items = rank(token[1:], self.commands, lambda item: item[0][1:])
            if items and not (len(items) == 1 and items[0][0] == token):
                return Candidates(row, start, col, items, "command")
            return None
        if token.startswith("@"):
            items = [(f"@{p}", "") for p in rank_paths(token[1:], self.files())]
            if items and not (len(items) == 1 and items[0][0] == token):
                return Candidates(row, start, col, items, "path")
        return None


def apply(text: str, cands: Candidates, value: str) -> tuple[str, tuple[int, int]]:
    """The text with the token replaced, and the cursor (row, col) after the inserted value."""
    lines = text.split("\n")
    line = lines[cands.row]
    rest = line[cands.end :]
    insert = value if rest.startswith(" ") else value + " "
    lines[cands.row] = line[: cands.start] + insert + rest
    return "\n".join(lines), (cands.row, cands.start + len(insert))
