"""`vibe run --output-dir DIR`: `DIR/export.json` at the end of a headless run, with the
conversation, usage, cost and the files that write_file and edit changed (secrets redacted).
Changes made by bash commands are not tracked."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vibe.config.secrets import redact
from vibe.errors import UsageError
from vibe.events import ToolCallFinished

EXPORT_NAME = "export.json"
EXPORT_VERSION = 1
_FILE_TOOLS = ("write_file", "edit")


def check_output_dir(value: str | None) -> Path | None:
    """--output-dir DIR: created when missing; an existing non-folder is a usage error."""
    if not value:
        return None
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output-dir {value}: not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--output-dir {value}: cannot create it ({exc.strerror})") from None
    return path.resolve()


@dataclass
class ChangedFiles:
    """The files write_file and edit changed, in the order they were first changed."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def observe(self, event: ToolCallFinished) -> None:
        if event.name not in _FILE_TOOLS or event.status != "ok" or not event.data:
            return
        path = event.data.get("path")
        if not isinstance(path, str) or event.diff == "":  # "" diff: no change was made
            return
        entry = self.files.setdefault(path, {"path": path, "tools": [], "created": False})
        if event.name not in entry["tools"]:
            entry["tools"].append(event.name)
        if event.data.get("created"):
            entry["created"] = True

    def to_list(self) -> list[dict[str, Any]]:
        return list(self.files.values())


def write_export(
    folder: Path, result: dict[str, Any], run: Any, changed: ChangedFiles, secrets: list[str]
) -> Path:
    """Write `folder/export.json` atomically: the `result` object of the run (status, usage,
    cost, …), the session's messages and the changed files; returns the file's path."""
    session = getattr(run, "session", None)
    messages = [m.to_dict() for m in getattr(session, "messages", [])] if session else []
    body = {
        "version": EXPORT_VERSION,
        **result,
        "model": getattr(getattr(run, "model", None), "key", None),
        "cwd": str(getattr(run, "cwd", "")),
        "messages": messages,
        "files_changed": changed.to_list(),
    }
    text = redact(json.dumps(body, ensure_ascii=False, indent=1), secrets)
    target = folder / EXPORT_NAME
    temp = folder / f".{EXPORT_NAME}.{os.getpid()}.tmp"
    temp.write_text(text + "\n", encoding="utf-8")
    os.replace(temp, target)
    return target
