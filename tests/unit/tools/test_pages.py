"""Pages that hide nothing: read_file shows whole lines that fit the output cap and names the
next line it has not shown; grep shows whole matches and says how many it left out; bash
captures within the cap; grep's search stops on time (a backtracking regex) and on cancel and
never opens secret files it was not asked for."""

from __future__ import annotations

import asyncio
import re
import shutil
import time

import pytest

from tools.base import ToolContext, ToolError, parse_args
from tools.bash import BashTool
from tools.grep import GrepTool
from tools.read_file import ReadFileTool

ENGINES = [False] + ([True] if shutil.which("rg") else [])
NEXT = re.compile(r"call read_file with offset=(\d+) to read more\]$")


async def read(tmp_path, cap=None, **args):
    tool = ReadFileTool()
    return await tool.run(parse_args(tool, args), ToolContext(tmp_path, output_cap=cap))


async def grep(tmp_path, cap=None, use_rg=False, timeout=30.0, cancel=None, **args):
    tool = GrepTool(use_ripgrep=use_rg, timeout=timeout)
    ctx = ToolContext(tmp_path, output_cap=cap, cancel=cancel)
    return await tool.run(parse_args(tool, args), ctx)


async def page_through(tmp_path, path, cap):
    """Follow the trailers from line 1 to the end: the line numbers seen, in order."""
    seen: list[int] = []
    offset = 1
    for _ in range(1000):
        result = await read(tmp_path, cap, path=path, offset=offset)
        assert len(result.text.encode()) <= cap
        rows = result.text.splitlines()
        match = NEXT.search(rows[-1])
        shown = rows[:-1] if match else rows
        seen += [int(row.split("\t")[0]) for row in shown]
        if match is None:
            return seen
        offset = int(match.group(1))
        assert offset == seen[-1] + 1, "the trailer names the next line not shown"
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("cap", [30_000, 4_096, 1_000])
async def test_paging_visits_every_line_exactly_once(tmp_path, cap):
    # ~2,000 lines of 50 bytes: under the default 30,000 cap one page is ~500 lines.
    body = "".join(f"{i:05d} " + "abcdefghij" * 4 + "xyz\n" for i in range(1, 2001))
    (tmp_path / "f.txt").write_text(body)
    assert all(len(line) == 49 for line in body.splitlines())
    seen = await page_through(tmp_path, "f.txt", cap)
    assert seen == list(range(1, 2001))


async def test_a_line_longer_than_the_cap_is_cut_and_says_how_to_read_on(tmp_path):
    (tmp_path / "w.txt").write_text("short\n" + "a" * 5000 + "\nafter\n")
    seen = await page_through(tmp_path, "w.txt", 1_000)
    assert seen == [1, 2, 3]
    page = await read(tmp_path, 1_000, path="w.txt", offset=2)
    row = page.text.splitlines()[0]
    assert "line 2 cut at character" in row and "of 5000" in row
    assert "sed -n '2p' w.txt | cut -c" in row
    assert page.text.splitlines()[-1].endswith("offset=3 to read more]")
    # Without a cap, lines longer than 2,000 characters are cut the same way.
    whole = await read(tmp_path, path="w.txt")
    assert "line 2 cut at character 2000 of 5000" in whole.text


async def test_limit_and_the_byte_cap_agree(tmp_path):
    (tmp_path / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 101)))
    limited = await read(tmp_path, 30_000, path="f.txt", offset=10, limit=5)
    assert limited.text.splitlines()[-1].endswith("offset=15 to read more]")
    assert limited.data["end_line"] == 14


@pytest.mark.parametrize("use_rg", ENGINES)
async def test_grep_keeps_whole_matches_within_the_cap_and_counts_the_rest(tmp_path, use_rg):
    (tmp_path / "m.txt").write_text(
        "".join(f"match {i:04d} " + "z" * 80 + "\n" for i in range(1000))
    )
    result = await grep(tmp_path, 3_000, use_rg, pattern="match", max_matches=2000)
    assert len(result.text.encode()) <= 3_000
    rows = result.text.splitlines()
    shown = rows[:-1]
    assert all(re.fullmatch(r"m\.txt:\d+:match \d{4} z{80}", row) for row in shown)
    assert [int(r.split(":")[1]) for r in shown] == list(range(1, len(shown) + 1))
    left = 1000 - len(shown)
    assert rows[-1] == (
        f"[output cap reached after {len(shown)} matches; {left} more matching lines left "
        "out: narrow the pattern, path or glob]"
    )
    assert result.data == {"matches": len(shown), "truncated": True, "left_out": left}
    capped = await grep(tmp_path, None, use_rg, pattern="match", max_matches=10)
    assert capped.text.splitlines()[-1].startswith(
        "[stopped after 10 matches; 990 more matching lines left out"
    )


@pytest.mark.parametrize("use_rg", ENGINES)
async def test_grep_skips_secret_files_unless_named(tmp_path, use_rg):
    for name in (".env", ".env.local", "server.pem", "id_rsa", "id_ed25519.pub", "code.py"):
        (tmp_path / name).write_text("needle\n")
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("needle\n")
    found = await grep(tmp_path, None, use_rg, pattern="needle")
    assert found.text == "code.py:1:needle"
    named = await grep(tmp_path, None, use_rg, pattern="needle", path=".env")
    assert named.text == ".env:1:needle"


async def test_a_backtracking_pattern_times_out_as_a_tool_error(tmp_path):
    (tmp_path / "a.txt").write_text("a" * 60 + "!\n")
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 1 s.*\(a\+\)\+"):
        await grep(tmp_path, None, timeout=1.0, pattern="(a+)+$")
    assert time.monotonic() - started < 5


async def test_cancelling_grep_kills_its_search_at_once(tmp_path):
    (tmp_path / "a.txt").write_text("a" * 60 + "!\n")
    task = asyncio.create_task(grep(tmp_path, None, timeout=60.0, pattern="(a+)+$"))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 3


async def test_bash_captures_within_the_callers_cap(tmp_path):
    tool = BashTool()
    args = parse_args(tool, {"command": "seq 1 100000"})
    small = await tool.run(args, ToolContext(tmp_path, output_cap=2_000))
    assert len(small.text.encode()) <= 2_000 and "omitted" in small.text
    assert small.text.startswith("1\n2\n") and small.text.endswith("100000\n[exit code: 0]")
    default = await tool.run(args, ToolContext(tmp_path))
    assert 20_000 < len(default.text.encode()) <= 30_000
