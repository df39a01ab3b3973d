"""The `read_file` tool: numbered lines of a text file, in any common encoding, with size caps."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tools._image import ImageFileError, load_image
from tools._paths import display, missing_file_error, resolve
from tools._sniff import Kind, sniff
from tools._text import decode, sniff_encoding
from tools.base import Tool, ToolContext, ToolError, ToolResult

MAX_LINES = 2000
MAX_BYTES = 64 * 1024
MAX_LINE_CHARS = 2000
# Above this size the file is decoded from a sample-chosen encoding while streaming.
WHOLE_FILE_BYTES = 8 * 1024 * 1024


class ReadFileArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="File path, relative to the working directory or absolute.")
    offset: int | None = Field(default=None, ge=1, description="First line to read (1-based).")
    limit: int | None = Field(
        default=None, ge=1, description=f"How many lines to read (at most {MAX_LINES})."
    )


class ReadFileTool(Tool):
    name: ClassVar[str] = "read_file"
    description: ClassVar[str] = (
        "Read a text file and return its lines numbered like `cat -n` (an image file, png/jpg/"
        "gif/webp, is shown to models that take images). Use offset and limit "
        f"to page through large files; one call returns at most {MAX_LINES} lines or "
        f"{MAX_BYTES // 1024} KB (less when the output cap is lower), and says which offset "
        "to read next."
    )
    Args: ClassVar[type[BaseModel]] = ReadFileArgs
    access: ClassVar[str] = "read"

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, ReadFileArgs)
        if ctx.files is not None:  # an editor's buffer (vibe.acp), else the disk
            text = await ctx.files.read_text(resolve(ctx.cwd, args.path))
            if text is not None:
                return _read(args, ctx.cwd, ctx.output_cap, text)
        return await asyncio.to_thread(_read, args, ctx.cwd, ctx.output_cap)


def _read(args: ReadFileArgs, cwd: Path, cap: int | None, text: str | None = None) -> ToolResult:
    path = resolve(cwd, args.path)
    shown = display(cwd, path)
    if text is not None:
        lines, total = _text_lines(text, args.offset or 1)
    elif not path.exists():
        raise missing_file_error(cwd, args.path, path)
    elif path.is_dir():
        raise ToolError(f"{shown} is a directory; use bash `ls` or grep to explore it")
    else:
        try:
            kind, head = sniff(path)
            if kind == "image":  # png/jpg/gif/webp (issue 24)
                return _image(path, shown)
            lines, total = _lines(path, shown, args.offset or 1, kind, head)
        except PermissionError:
            raise ToolError(f"permission denied: {shown}") from None
    start = args.offset or 1
    if total == 0:
        return ToolResult(text=f"({shown} is empty)", data={"path": shown, "total_lines": 0})
    if start > total:
        raise ToolError(f"offset {start} is past the end of {shown} ({total} lines)")
    wanted = min(args.limit or MAX_LINES, MAX_LINES)
    out = _page(lines[:wanted], start, shown, MAX_BYTES if cap is None else min(cap, MAX_BYTES))
    last = start + len(out) - 1
    if last < total:
        out.append(_trailer(start, last, total))
    return ToolResult(
        text="\n".join(out),
        data={"path": shown, "start_line": start, "end_line": last, "total_lines": total},
    )


def _image(path: Path, shown: str) -> ToolResult:
    """An image file: its pixels in `data["images"]` (the agent shows them to a model that
    takes images and tells any other model it cannot see them)."""
    try:
        payload = load_image(path, shown)
    except ImageFileError as exc:
        raise ToolError(f"{shown} is a binary file ({path.stat().st_size} bytes): {exc}") from None
    return ToolResult(
        text=f"[image {payload.describe()}]",
        data={"path": shown, "images": [payload.to_dict()]},
    )


def _trailer(start: int, last: int, total: int) -> str:
    return (
        f"[showing lines {start}-{last} of {total}; "
        f"call read_file with offset={last + 1} to read more]"
    )


def _page(lines: list[str], start: int, shown: str, budget: int) -> list[str]:
    """Numbered rows of whole lines that fit in `budget` bytes with the trailer; at least one
    row, so paging always moves on (a line longer than the page is cut, saying so)."""
    end = start + len(lines)
    room = budget - len(_trailer(end, end, end).encode()) - 1  # the trailer's worst case
    out: list[str] = []
    size = 0
    for number, line in enumerate(lines, start=start):
        row = _row(number, line, shown, MAX_LINE_CHARS)
        cost = len(row.encode("utf-8", errors="replace")) + 1
        if size + cost > room:
            if not out:  # the first line alone does not fit: cut it to the page
                out.append(_fit(number, line, shown, room))
            break
        out.append(row)
        size += cost
    return out


def _row(number: int, line: str, shown: str, keep: int) -> str:
    if len(line) <= keep:
        return f"{number:6}\t{line}"
    return f"{number:6}\t{line[:keep]}{_cut_note(number, shown, keep, len(line))}"


def _cut_note(number: int, shown: str, keep: int, length: int) -> str:
    return (
        f"... [line {number} cut at character {keep} of {length}; read the rest with bash: "
        f"sed -n '{number}p' {shlex.quote(shown)} | cut -c {keep + 1}- | head -c 20000]"
    )


def _fit(number: int, line: str, shown: str, room: int) -> str:
    """Row `number` cut so that it fits in `room` bytes, with a note on how to read on."""
    overhead = len(f"{number:6}\t".encode()) + len(_cut_note(number, shown, len(line), len(line)))
    data = line.encode("utf-8", errors="replace")[: max(0, room - overhead - 1)]
    keep = len(data.decode("utf-8", errors="ignore"))
    return _row(number, line, shown, min(keep, MAX_LINE_CHARS))


def _text_lines(text: str, start: int) -> tuple[list[str], int]:
    """Like _lines, for text given by an editor."""
    all_lines = text.removeprefix("\ufeff").split("\n")
    if all_lines[-1] == "":
        all_lines.pop()
    return [_strip_cr(x) for x in all_lines[start - 1 : start - 1 + MAX_LINES]], len(all_lines)


def _lines(path: Path, shown: str, start: int, kind: Kind, sample: bytes) -> tuple[list[str], int]:
    """Lines from `start` (at most MAX_LINES) and the file's total line count; `kind` and
    `sample`: what tools._sniff found in its first bytes."""
    size = path.stat().st_size
    if kind == "binary":
        raise ToolError(
            f"{shown} is a binary file ({size} bytes); read_file only reads text "
            "(inspect it with bash, e.g. `file` or `xxd | head`)"
        )
    if size <= WHOLE_FILE_BYTES:
        all_lines = decode(path.read_bytes()).text.split("\n")
        if all_lines[-1] == "":
            all_lines.pop()
        return [_strip_cr(x) for x in all_lines[start - 1 : start - 1 + MAX_LINES]], len(all_lines)
    encoding = sniff_encoding(sample)
    kept: list[str] = []
    total = 0
    with path.open(encoding=encoding, errors="replace", newline="\n") as text:
        for total, line in enumerate(text, start=1):
            if start <= total < start + MAX_LINES:
                kept.append(_strip_cr(line.rstrip("\n")))
    if kept and kept[0].startswith("\ufeff"):
        kept[0] = kept[0][1:]
    return kept, total


def _strip_cr(line: str) -> str:
    return line[:-1] if line.endswith("\r") else line
