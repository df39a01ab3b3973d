"""The `write_file` tool: create or overwrite a file atomically, keeping its encoding."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tools._paths import display, resolve
from tools._text import (
    SNIFF_BYTES,
    TextFile,
    atomic_write,
    count_changes,
    decode,
    looks_binary,
    unified_diff,
    write_via,
)
from tools.base import FileAccess, Tool, ToolContext, ToolError, ToolResult


class WriteFileArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="File path, relative to the working directory or absolute.")
    content: str = Field(description="The complete new content of the file.")


class WriteFileTool(Tool):
    name: ClassVar[str] = "write_file"
    description: ClassVar[str] = (
        "Create a file, or replace an existing file's whole content. Parent folders are "
        "created. An existing file keeps its encoding and line endings. Prefer `edit` for "
        "changing part of a file."
    )
    Args: ClassVar[type[BaseModel]] = WriteFileArgs
    access: ClassVar[str] = "write"

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, WriteFileArgs)
        return await write_via(ctx.files, _write_through, _write, args, ctx.cwd)


async def _write_through(files: FileAccess, args: WriteFileArgs, cwd: Path) -> ToolResult | None:
    """The content written through the editor; None: the editor does not take it."""
    path = resolve(cwd, args.path)
    shown = display(cwd, path)
    if path.is_dir():
        raise ToolError(f"{shown} is a directory")
    old = await files.read_text(path) if path.is_file() else None
    if old is None:  # a new file, or one the editor does not hold (binary): the disk path
        return None
    content = args.content
    if old is not None and "\r\n" in old and old.count("\r\n") == old.count("\n"):
        content = content.replace("\r\n", "\n").replace("\n", "\r\n")
    if old == content:
        return ToolResult(text=f"No changes: {shown} already has this content", diff="")
    # Like a disk write: once started, it finishes with its real result.
    if not await asyncio.shield(files.write_text(path, content)):
        return None
    return _written(shown, old, content, True, "utf-8")


def _write(args: WriteFileArgs, cwd: Path) -> ToolResult:
    path = resolve(cwd, args.path)
    shown = display(cwd, path)
    if path.is_dir():
        raise ToolError(f"{shown} is a directory")
    old: TextFile | None = None
    if path.exists():
        data = path.read_bytes()
        if not looks_binary(data[:SNIFF_BYTES]):
            old = decode(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ToolError(f"cannot create the folder for {shown}: a parent is a file") from None
    if old is None:
        fmt = TextFile(text="", encoding="utf-8")
        content = args.content
        payload = content.encode("utf-8")
    else:
        fmt = old
        content = args.content.replace("\r\n", "\n") if old.newline == "\r\n" else args.content
        payload = old.encode(content)
    existed = path.exists()
    if old is not None and old.text == content:
        return ToolResult(text=f"No changes: {shown} already has this content", diff="")
    try:
        atomic_write(path, payload)
    except PermissionError:
        raise ToolError(f"permission denied: {shown}") from None
    except OSError as exc:
        raise ToolError(f"could not write {shown}: {exc.strerror or exc}") from None
    return _written(shown, old.text if old is not None else None, content, existed, fmt.encoding)


def _written(shown: str, old: str | None, content: str, existed: bool, encoding: str) -> ToolResult:
    diff = unified_diff(old, content, shown)
    lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
    if existed:
        added, removed = count_changes(diff)
        text = f"Wrote {shown} ({lines} lines; +{added} -{removed})"
    else:
        text = f"Created {shown} ({lines} lines)"
    return ToolResult(
        text=text, diff=diff, data={"path": shown, "created": not existed, "encoding": encoding}
    )
