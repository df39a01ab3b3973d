"""What a tool call about to be approved would do, computed without doing it: the unified diff
of an edit (or why it would fail), the content of a write_file (its start and size when long,
and whether it creates or overwrites), the whole bash command. Reads files; never writes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tools._paths import display, resolve
from tools._text import SNIFF_BYTES, decode, looks_binary, read_text
from tools.base import ToolError
from tools.edit import check_strings, replace_text

HEAD_LINES = 40  # lines of a write_file's content shown
MAX_PREVIEW_BYTES = 2_000_000  # larger files are described, not diffed
MAX_BODY_CHARS = 200_000  # a preview beyond this is cut, and says so
PreviewKind = Literal["diff", "content", "command", "error", "args"]


@dataclass(frozen=True)
class Preview:
    """`summary`: one line (what and where); `body`: the diff, content or command in full."""

    kind: PreviewKind
    summary: str
    body: str = ""


def preview(tool_name: str, arguments: dict[str, Any], cwd: Path) -> Preview:
    """The preview of one call; any failure to compute it becomes an `error` preview."""
    try:
        if tool_name == "bash" and isinstance(arguments.get("command"), str):
            return Preview("command", "", arguments["command"])
        if tool_name == "edit" and _strings(arguments, "path", "old_string", "new_string"):
            return edit_preview(arguments, cwd)
        if tool_name == "write_file" and _strings(arguments, "path", "content"):
            return write_preview(arguments["path"], arguments["content"], cwd)
    except ToolError as exc:
        return Preview("error", f"This call would fail: {exc}")
    except (OSError, ValueError) as exc:
        return Preview("error", f"Cannot preview this call: {exc}")
    if isinstance(arguments.get("path"), str) and len(arguments) == 1:
        return Preview("args", arguments["path"])
    return Preview("args", "", _cut(json.dumps(arguments, ensure_ascii=False, indent=1)))


def _strings(arguments: dict[str, Any], *keys: str) -> bool:
    return all(isinstance(arguments.get(k), str) for k in keys)


def edit_preview(arguments: dict[str, Any], cwd: Path) -> Preview:
    """The diff `edit` would make (the same matching rules as tools.edit), or why it fails."""
    raw, old, new = arguments["path"], arguments["old_string"], arguments["new_string"]
    replace_all = bool(arguments.get("replace_all", False))
    path = resolve(cwd, raw)
    shown = display(cwd, path)
    if not path.exists():
        raise ToolError(f"file not found: {raw}")
    if path.is_dir():
        raise ToolError(f"{shown} is a directory")
    check_strings(old, new)
    size = path.stat().st_size
    if size > MAX_PREVIEW_BYTES:
        return Preview("diff", f"edit {shown} ({_size(size)}: too large to preview the diff)")
    done = replace_text(read_text(path, shown), old, new, shown, replace_all)
    noun = "replacement" if done.count == 1 else "replacements"
    summary = f"edit {shown}: {done.count} {noun} (+{done.added} -{done.removed} lines)"
    return Preview("diff", summary, _cut(done.diff))


def write_preview(raw: str, content: str, cwd: Path) -> Preview:
    """Whether write_file creates or overwrites, the size, and the first HEAD_LINES lines."""
    path = resolve(cwd, raw)
    shown = display(cwd, path)
    if path.is_dir():
        raise ToolError(f"{shown} is a directory")
    lines = content.splitlines()
    size = len(content.encode("utf-8"))
    what = f"{len(lines)} lines, {_size(size)}"
    if path.exists():
        old_size = path.stat().st_size
        verb = f"overwrites {shown} ({_size(old_size)} now)"
        if old_size <= MAX_PREVIEW_BYTES:
            with path.open("rb") as fh:
                head = fh.read(SNIFF_BYTES)
            if not looks_binary(head) and decode(path.read_bytes()).text == content:
                verb = f"leaves {shown} unchanged (same content)"
    elif os.path.lexists(path):
        verb = f"writes through the link {shown}"
    else:
        verb = f"creates {shown}"
    body = "\n".join(lines[:HEAD_LINES])
    if len(lines) > HEAD_LINES:
        body += f"\n… ({len(lines) - HEAD_LINES} more lines)"
    return Preview("content", f"write_file {verb}: {what}", _cut(body))


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _cut(text: str) -> str:
    if len(text) <= MAX_BODY_CHARS:
        return text
    return text[:MAX_BODY_CHARS] + f"\n… ({len(text) - MAX_BODY_CHARS} more characters)"
