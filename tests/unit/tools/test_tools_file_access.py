"""ToolContext.files: read_file, write_file and edit through an editor's buffers (vibe.acp),
the disk for what the editor does not hold."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tools.base import ToolContext, ToolError
from tools.edit import EditArgs, EditTool
from tools.read_file import ReadFileArgs, ReadFileTool
from tools.write_file import WriteFileArgs, WriteFileTool


class Buffers:
    """An editor holding some files with unsaved text."""

    def __init__(self, held: dict[Path, str]) -> None:
        self.held = held
        self.written: dict[Path, str] = {}

    async def read_text(self, path: Path) -> str | None:
        return self.held.get(path)

    async def write_text(self, path: Path, content: str) -> bool:
        self.written[path] = self.held[path] = content
        return True


def run(tool, args, ctx):
    return asyncio.run(tool.run(args, ctx))


def test_reads_and_edits_go_through_the_buffer(tmp_path):
    f = tmp_path / "a.py"
    f.write_text("x = 1\n")
    files = Buffers({f: "x = 1\ny = 2  # unsaved\n"})
    ctx = ToolContext(tmp_path, files=files)
    out = run(ReadFileTool(), ReadFileArgs(path="a.py"), ctx)
    assert "y = 2  # unsaved" in out.text and out.data["total_lines"] == 2
    result = run(EditTool(), EditArgs(path="a.py", old_string="y = 2", new_string="y = 3"), ctx)
    assert result.ok and "+y = 3" in result.diff
    assert files.written == {f: "x = 1\ny = 3  # unsaved\n"}
    assert f.read_text() == "x = 1\n"
    with pytest.raises(ToolError, match="not found"):
        run(EditTool(), EditArgs(path="a.py", old_string="zzz", new_string="q"), ctx)


def test_write_file_keeps_the_buffers_crlf_and_new_files_go_to_disk(tmp_path):
    f = tmp_path / "w.txt"
    f.write_bytes(b"old\r\n")
    files = Buffers({f: "old\r\nunsaved\r\n"})
    ctx = ToolContext(tmp_path, files=files)
    result = run(WriteFileTool(), WriteFileArgs(path="w.txt", content="new\nlines\n"), ctx)
    assert files.written == {f: "new\r\nlines\r\n"} and "Wrote w.txt" in result.text
    run(WriteFileTool(), WriteFileArgs(path="sub/new.txt", content="hi\n"), ctx)
    assert (tmp_path / "sub" / "new.txt").read_text() == "hi\n"
    assert tmp_path / "sub" / "new.txt" not in files.written


def test_files_the_editor_does_not_hold_use_the_disk(tmp_path):
    f = tmp_path / "d.txt"
    f.write_text("disk\n")
    ctx = ToolContext(tmp_path, files=Buffers({}))
    assert "disk" in run(ReadFileTool(), ReadFileArgs(path="d.txt"), ctx).text
    run(EditTool(), EditArgs(path="d.txt", old_string="disk", new_string="DISK"), ctx)
    assert f.read_text() == "DISK\n"
