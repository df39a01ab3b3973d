"""grep (the Python fallback, and ripgrep when installed) and the todo tool."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tools.base import ToolContext, ToolError, parse_args
from tools.grep import GrepTool
from tools.todo import TodoTool

ENGINES = [False] + ([True] if shutil.which("rg") else [])


async def grep(tmp_path, use_rg=False, **args):
    tool = GrepTool(use_ripgrep=use_rg)
    return await tool.run(parse_args(tool, args), ToolContext(cwd=tmp_path))


def make_tree(root):
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("import os\nTOKEN = 'needle'\n")
    (root / "src" / "ui.ts").write_text("const needle = 1;\n")
    (root / "build").mkdir()
    (root / "build" / "out.py").write_text("needle in build\n")
    (root / "notes.log").write_text("needle in log\n")
    (root / "keep.log").write_text("needle kept\n")
    (root / "blob.bin").write_bytes(b"\x00\x01needle\x00")
    (root / ".gitignore").write_text("build/\n*.log\n!keep.log\n")


@pytest.mark.asyncio
@pytest.mark.parametrize("use_rg", ENGINES)
async def test_grep_in_git_repo_honours_gitignore(tmp_path, use_rg):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    make_tree(tmp_path)
    (tmp_path / ".git" / "needle.txt").write_text("needle inside .git\n")
    result = await grep(tmp_path, use_rg, pattern="needle")
    assert result.text.splitlines() == [
        "keep.log:1:needle kept",
        "src/app.py:2:TOKEN = 'needle'",
        "src/ui.ts:1:const needle = 1;",
    ]
    assert result.data == {"matches": 3, "truncated": False}


@pytest.mark.asyncio
@pytest.mark.parametrize("use_rg", ENGINES)
async def test_grep_without_git_reads_gitignore(tmp_path, use_rg):
    make_tree(tmp_path)
    (tmp_path / "src" / ".gitignore").write_text("ui.ts\n")
    result = await grep(tmp_path, use_rg, pattern="needle")
    assert result.text.splitlines() == ["keep.log:1:needle kept", "src/app.py:2:TOKEN = 'needle'"]


@pytest.mark.asyncio
@pytest.mark.parametrize("use_rg", ENGINES)
async def test_grep_glob_path_and_regex(tmp_path, use_rg):
    make_tree(tmp_path)
    assert (await grep(tmp_path, use_rg, pattern="needle", glob="*.{ts,py}")).text.splitlines() == [
        "src/app.py:2:TOKEN = 'needle'",
        "src/ui.ts:1:const needle = 1;",
    ]
    one = await grep(tmp_path, use_rg, pattern=r"^import\s+\w+$", path="src/app.py")
    assert one.text == "src/app.py:1:import os"
    none = await grep(tmp_path, use_rg, pattern="(?i)NOTHERE", path="src")
    assert none.text == "No matches for /(?i)NOTHERE/ in src"
    assert none.ok


@pytest.mark.asyncio
@pytest.mark.parametrize("use_rg", ENGINES)
async def test_grep_caps_matches_and_line_length(tmp_path, use_rg):
    (tmp_path / "many.txt").write_text("hit\n" * 500 + "hit " + "x" * 1000 + "\n")
    capped = await grep(tmp_path, use_rg, pattern="hit", max_matches=10)
    lines = capped.text.splitlines()
    assert lines[:10] == [f"many.txt:{i}:hit" for i in range(1, 11)]
    assert lines[10].startswith("[stopped after 10 matches")
    assert capped.data["truncated"] is True
    long = await grep(tmp_path, use_rg, pattern="x{1000}")
    assert long.text.endswith("x" * 296 + "...")


@pytest.mark.asyncio
async def test_grep_errors(tmp_path):
    with pytest.raises(ToolError, match="invalid regular expression '\\(unclosed'"):
        await grep(tmp_path, pattern="(unclosed")
    with pytest.raises(ToolError, match="file not found: nowhere"):
        await grep(tmp_path, pattern="x", path="nowhere")


@pytest.mark.asyncio
async def test_todo_keeps_and_renders_the_list(tmp_path):
    tool = TodoTool()
    ctx = ToolContext(cwd=tmp_path)
    args = parse_args(
        tool,
        '{"todos": [{"content": "read code", "status": "completed"},'
        ' {"id": "t2", "content": "fix bug", "status": "in_progress"},'
        ' {"content": "run tests", "status": "pending"}]}',
    )
    result = await tool.run(args, ctx)
    assert result.text.splitlines() == [
        "Todos (1/3 completed):",
        "[x] 1. read code",
        "[~] t2. fix bug",
        "[ ] 3. run tests",
    ]
    assert result.data["todos"][1] == {"id": "t2", "content": "fix bug", "status": "in_progress"}
    assert tool.todos == result.data["todos"]
    cleared = await tool.run(parse_args(tool, '{"todos": []}'), ctx)
    assert cleared.text == "Todo list is empty." and tool.todos == []
    with pytest.raises(ToolError, match="duplicate todo id 'a'"):
        await tool.run(
            parse_args(tool, {"todos": [{"id": "a", "content": "x", "status": "pending"}] * 2}), ctx
        )
