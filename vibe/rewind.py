"""Rewind checkpoints: before write_file or edit first touches a file during a user message, its
pre-image (or the fact that it did not exist) is kept in the session folder, under
`rewind/<index>/` where <index> is the position of that user message in the session's history.
Restoring to a message writes back, for every file changed since, its content from before that
message. Changes made by bash (or anything else) are not tracked.

Layout: rewind/<index>/turn.json {"index", "text"} (what the user typed) and files.jsonl, one
{"path", "blob"} per file (blob: a file name in the folder, or null when the file was absent)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TRACKED_TOOLS = ("write_file", "edit")
MAX_PRE_IMAGE_BYTES = 20_000_000  # larger files are noted but cannot be restored


@dataclass(frozen=True)
class Turn:
    """A user message the conversation can go back to."""

    index: int  # position of the message in Session.messages
    text: str  # what the user typed


@dataclass(frozen=True)
class PreImage:
    path: Path
    blob: Path | None  # None: the file did not exist before
    restorable: bool = True


class Checkpoints:
    """The pre-images of one session (its folder) in working folder `cwd`."""

    def __init__(self, session_path: Path, cwd: Path) -> None:
        self.root = session_path / "rewind"
        self.cwd = cwd
        self.current: int | None = None
        self._seen: set[str] = set()

    def begin(self, index: int, text: str) -> None:
        """A user message at `index` starts: later writes belong to it."""
        folder = self.root / str(index)
        if folder.exists():  # an index reused after a rewind: the old branch is gone
            shutil.rmtree(folder, ignore_errors=True)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _write_json(folder / "turn.json", {"index": index, "text": text})
        except OSError as exc:
            log.warning("rewind: cannot record message %d: %s", index, exc)
        self.current, self._seen = index, set()

    def before_write(self, tool: str, arguments: Mapping[str, Any]) -> None:
        """AgentSettings.before_run: keep the pre-image of the file write_file/edit will change."""
        if tool not in TRACKED_TOOLS or self.current is None:
            return
        raw = arguments.get("path")
        if not isinstance(raw, str) or not raw:
            return
        path = Path(os.path.abspath(self.cwd / Path(raw).expanduser()))
        key = str(path)
        if key in self._seen:
            return
        self._seen.add(key)
        try:
            self._keep(path)
        except OSError as exc:  # never stop the tool: the file just cannot be restored
            log.warning("rewind: cannot keep %s: %s", path, exc)

    def _keep(self, path: Path) -> None:
        folder = self.root / str(self.current)
        folder.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"path": str(path), "blob": None}
        if path.is_file():
            if path.stat().st_size > MAX_PRE_IMAGE_BYTES:
                record["too_big"] = True
            else:
                blob = f"{len(self._seen):04d}.bin"
                shutil.copyfile(path, folder / blob)
                record["blob"] = blob
        elif path.exists():  # a folder or device: nothing to put back
            return
        with (folder / "files.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def turns(self) -> dict[int, Turn]:
        """The recorded user messages by index."""
        out: dict[int, Turn] = {}
        for folder in self._folders():
            try:
                data = json.loads((folder / "turn.json").read_text(encoding="utf-8"))
                out[int(data["index"])] = Turn(int(data["index"]), str(data["text"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def changed_since(self, index: int) -> list[PreImage]:
        """Files write_file/edit changed from the message at `index` on, each with its content
        from before the earliest of those messages."""
        found: dict[str, PreImage] = {}
        for folder in self._folders():
            if int(folder.name) < index:
                continue
            for record in _records(folder / "files.jsonl"):
                key = str(record.get("path", ""))
                if not key or key in found:
                    continue
                blob = record.get("blob")
                found[key] = PreImage(
                    Path(key), folder / blob if blob else None, not record.get("too_big")
                )
        return sorted(found.values(), key=lambda p: str(p.path))

    def restore(self, index: int) -> tuple[list[Path], list[str]]:
        """Put back every file changed since message `index`: (restored paths, problems)."""
        restored: list[Path] = []
        problems: list[str] = []
        for pre in self.changed_since(index):
            try:
                if not pre.restorable:
                    problems.append(f"{pre.path}: too large to have been kept")
                    continue
                if pre.blob is None:
                    if pre.path.is_file():
                        pre.path.unlink()
                else:
                    pre.path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(pre.blob, pre.path)
                restored.append(pre.path)
            except OSError as exc:
                problems.append(f"{pre.path}: {exc.strerror or exc}")
        return restored, problems

    def drop_from(self, index: int) -> None:
        """Forget the checkpoints of the messages from `index` on (after a rewind)."""
        for folder in self._folders():
            if int(folder.name) >= index:
                shutil.rmtree(folder, ignore_errors=True)
        if self.current is not None and self.current >= index:
            self.current = None

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(
            (p for p in self.root.iterdir() if p.is_dir() and p.name.isdigit()),
            key=lambda p: int(p.name),
        )


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            out.append(data)
    return out


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
