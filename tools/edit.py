"""The `edit` tool: exact string replacement in a file, atomic, keeping encoding and newlines."""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tools._paths import display, missing_file_error, resolve
from tools._text import (
    TextFile,
    atomic_write,
    count_changes,
    decode,
    read_text,
    unified_diff,
    write_via,
)
from tools.base import FileAccess, Tool, ToolContext, ToolError, ToolResult

MAX_SCAN_LINES = 50_000  # lines compared when looking for the closest text to a failed match


class EditArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="File path, relative to the working directory or absolute.")
    old_string: str = Field(description="The exact text to replace, including indentation.")
    new_string: str = Field(description="The replacement text.")
    replace_all: bool = Field(
        default=False, description="Replace every occurrence instead of exactly one."
    )


class EditTool(Tool):
    name: ClassVar[str] = "edit"
    description: ClassVar[str] = (
        "Replace old_string with new_string in a file. old_string must match the file exactly "
        "(whitespace included) and be unique unless replace_all is true; include enough "
        "surrounding lines to make it unique. Returns a diff."
    )
    Args: ClassVar[type[BaseModel]] = EditArgs
    access: ClassVar[str] = "write"

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, EditArgs)
        return await write_via(ctx.files, _edit_through, _edit, args, ctx.cwd)


async def _edit_through(files: FileAccess, args: EditArgs, cwd: Path) -> ToolResult | None:
    """The edit applied to the editor's text of the file; None: the editor does not hold it."""
    path = resolve(cwd, args.path)
    current = await files.read_text(path)
    if current is None:
        return None
    file = decode(current.encode("utf-8"))  # its line endings are kept, as on disk
    updated, result = _replace(args, file, display(cwd, path))
    text = updated.replace("\n", "\r\n") if file.newline == "\r\n" else updated
    # Like a disk write: once started, it finishes with its real result.
    if not await asyncio.shield(files.write_text(path, text)):
        return None
    return result


def _edit(args: EditArgs, cwd: Path) -> ToolResult:
    path = resolve(cwd, args.path)
    shown = display(cwd, path)
    if not path.exists():
        raise missing_file_error(cwd, args.path, path)
    if path.is_dir():
        raise ToolError(f"{shown} is a directory")
    file = read_text(path, shown)
    updated, result = _replace(args, file, shown)
    try:
        atomic_write(path, file.encode(updated))
    except PermissionError:
        raise ToolError(f"permission denied: {shown}") from None
    except OSError as exc:
        raise ToolError(f"could not write {shown}: {exc.strerror or exc}") from None
    return result


def _replace(args: EditArgs, file: TextFile, shown: str) -> tuple[str, ToolResult]:
    """The file's new text and the tool's result; ToolError when the edit cannot apply."""
    done = replace_text(file, args.old_string, args.new_string, shown, args.replace_all)
    first = done.lines[0]
    where = f"line {first}" if done.count == 1 else f"lines {', '.join(map(str, done.lines))}"
    noun = "replacement" if done.count == 1 else "replacements"
    return done.text, ToolResult(
        text=f"Edited {shown}: {done.count} {noun} at {where} (+{done.added} -{done.removed} lines)",
        diff=done.diff,
        data={"path": shown, "replacements": done.count, "first_line": first},
    )


@dataclass(frozen=True)
class Replacement:
    """An edit applied to a file's text (nothing read or written)."""

    text: str  # the new text
    diff: str  # unified diff, labelled with the shown path
    added: int
    removed: int
    count: int  # replacements made
    lines: list[int]  # line numbers of the first ten, in the old text


def check_strings(old: str, new: str) -> None:
    """ToolError when `old_string`/`new_string` cannot make an edit, whatever the file."""
    if not old:
        raise ToolError("old_string is empty; use write_file to create or overwrite a file")
    if old == new:
        raise ToolError("old_string and new_string are identical; there is nothing to change")


def replace_text(
    file: TextFile, old: str, new: str, shown: str, replace_all: bool = False
) -> Replacement:
    """The `edit` tool's matching on `file`'s text (pure): line endings as the file has them,
    `old` once (or every time with `replace_all`); ToolError saying why when it cannot apply."""
    check_strings(old, new)
    text = file.text
    if file.newline == "\r\n":
        old, new = old.replace("\r\n", "\n"), new.replace("\r\n", "\n")
    elif old not in text and "\r\n" in text and "\n" in old:
        # Mixed line endings are kept verbatim: try the model's text with CRLF as well.
        crlf = old.replace("\r\n", "\n").replace("\n", "\r\n")
        if crlf in text:
            old, new = crlf, new.replace("\r\n", "\n").replace("\n", "\r\n")
    starts = _occurrences(text, old)
    if not starts:
        raise ToolError(_not_found_message(text, old, shown))
    if len(starts) > 1 and not replace_all:
        numbers = ", ".join(str(_line_of(text, i)) for i in starts[:20])
        more = " ..." if len(starts) > 20 else ""
        raise ToolError(
            f"old_string occurs {len(starts)} times in {shown} (at lines {numbers}{more}); "
            "include more surrounding lines to make it unique, or set replace_all=true"
        )
    updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
    diff = unified_diff(text, updated, shown)
    added, removed = count_changes(diff)
    lines = [_line_of(text, i) for i in starts[:10]]
    return Replacement(updated, diff, added, removed, len(starts), lines)


def _occurrences(text: str, needle: str) -> list[int]:
    found: list[int] = []
    index = text.find(needle)
    while index != -1:
        found.append(index)
        index = text.find(needle, index + len(needle))
    return found


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _not_found_message(text: str, old: str, shown: str) -> str:
    lines = text.split("\n")
    wanted = old.strip("\n").split("\n")
    span = len(wanted)
    # Same lines up to whitespace: the usual cause is indentation (tabs vs spaces).
    squashed = [" ".join(w.split()) for w in wanted]
    flat = [" ".join(x.split()) for x in lines[:MAX_SCAN_LINES]]
    for i in range(len(flat) - span + 1):
        if flat[i] == squashed[0] and flat[i : i + span] == squashed:
            return (
                f"old_string was not found in {shown}, but lines {i + 1}-{i + span} match it "
                "when whitespace is ignored; copy the exact indentation and spacing:\n"
                + _numbered(lines, i, i + span)
            )
    anchor = next((w for w in wanted if w.strip()), "")
    best, best_score = -1, 0.0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(anchor.strip())
    for i, line in enumerate(lines[:MAX_SCAN_LINES]):
        matcher.set_seq1(line.strip())
        if matcher.real_quick_ratio() <= best_score or matcher.quick_ratio() <= best_score:
            continue
        score = matcher.ratio()
        if score > best_score:
            best, best_score = i, score
    message = f"old_string was not found in {shown}"
    if best < 0 or best_score < 0.5:
        return message + "; read the file again to get its current content"
    lo, hi = max(0, best - 1), min(len(lines), best + span + 1)
    return (
        message + f"; the closest text is at line {best + 1} (read the file again and copy "
        "the exact text):\n" + _numbered(lines, lo, hi)
    )


def _numbered(lines: list[str], lo: int, hi: int) -> str:
    return "\n".join(f"{n + 1:6}\t{lines[n]}" for n in range(lo, hi))
