"""The approval dialog shows what will happen before it happens: an edit's diff (computed
without writing, or why the edit would fail), a write's content, start and size, and whether
it creates or overwrites, and the whole bash command, wrapped, never cut."""

from __future__ import annotations

from pathlib import Path

from vibe.tui.preview import HEAD_LINES, preview

from .conftest import approval_open, scripted_app, wait_for

SOURCE = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"


def edit(path: str, old: str, new: str, replace_all: bool = False) -> dict:
    return {"path": path, "old_string": old, "new_string": new, "replace_all": replace_all}


def unchanged(path: Path, before: tuple[bytes, int]) -> bool:
    return (path.read_bytes(), path.stat().st_mtime_ns) == before


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_edit_preview_is_the_diff_and_writes_nothing(tmp_path):
    target = tmp_path / "calc.py"
    target.write_text(SOURCE)
    before = snapshot(target)
    shown = preview("edit", edit("calc.py", "a - b\n\n\n", "a + b\n\n\n"), tmp_path)
    assert shown.kind == "diff" and shown.summary == "edit calc.py: 1 replacement (+1 -1 lines)"
    assert "--- a/calc.py" in shown.body and "+++ b/calc.py" in shown.body
    assert "-    return a - b\n+    return a + b\n" in shown.body
    every = preview("edit", edit("calc.py", "a - b", "b - a", replace_all=True), tmp_path)
    assert every.summary == "edit calc.py: 2 replacements (+2 -2 lines)"
    assert unchanged(target, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calc.py"], "no temp file either"


def test_edit_preview_says_why_the_edit_would_fail(tmp_path):
    (tmp_path / "calc.py").write_text(SOURCE)
    cases = {
        "missing.py": ("x", "y", "file not found: missing.py"),
        "calc.py": ("a - b", "a + b", "occurs 2 times"),
    }
    for path, (old, new, why) in cases.items():
        shown = preview("edit", edit(path, old, new), tmp_path)
        assert shown.kind == "error" and why in shown.summary
        assert shown.summary.startswith("This call would fail:")
    gone = preview("edit", edit("calc.py", "return a * b", "x"), tmp_path)
    assert gone.kind == "error" and "old_string was not found in calc.py" in gone.summary
    same = preview("edit", edit("calc.py", "add", "add"), tmp_path)
    assert "identical" in same.summary


def test_edit_preview_matches_crlf_files_like_the_tool(tmp_path):
    (tmp_path / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    shown = preview("edit", edit("win.txt", "one\ntwo", "one\nTWO"), tmp_path)
    assert shown.kind == "diff" and "+TWO" in shown.body


def test_write_preview_creates_overwrites_and_shows_the_start_and_size(tmp_path):
    long = "".join(f"line {i}\n" for i in range(1, 101))
    created = preview("write_file", {"path": "new/notes.txt", "content": long}, tmp_path)
    assert created.kind == "content"
    assert created.summary == "write_file creates new/notes.txt: 100 lines, 792 bytes"
    lines = created.body.splitlines()
    assert lines[:HEAD_LINES] == [f"line {i}" for i in range(1, HEAD_LINES + 1)]
    assert lines[HEAD_LINES:] == [f"… ({100 - HEAD_LINES} more lines)"]
    assert not (tmp_path / "new").exists()
    (tmp_path / "old.txt").write_text("x" * 3000)
    over = preview("write_file", {"path": "old.txt", "content": "short\n"}, tmp_path)
    assert over.summary == "write_file overwrites old.txt (2.9 KB now): 1 lines, 6 bytes"
    assert over.body == "short" and (tmp_path / "old.txt").read_text() == "x" * 3000
    same = preview("write_file", {"path": "old.txt", "content": "x" * 3000}, tmp_path)
    assert "leaves old.txt unchanged" in same.summary
    folder = preview("write_file", {"path": ".", "content": ""}, tmp_path)
    assert folder.kind == "error" and "is a directory" in folder.summary


def test_bash_preview_is_the_whole_command(tmp_path):
    command = "echo start && " + " && ".join(f"step{i} --flag={i}" for i in range(200))
    shown = preview("bash", {"command": command}, tmp_path)
    assert (shown.kind, shown.body) == ("command", command)


async def test_the_dialog_shows_the_diff_before_anything_is_written(home, workdir):
    target = workdir / "calc.py"
    target.write_text(SOURCE)
    before = snapshot(target)
    call = {"name": "edit", "arguments": edit("calc.py", "a - b\n\n\n", "a + b\n\n\n")}
    app, _ = scripted_app(home, workdir, [{"tool_calls": [call]}, {"text": "ok"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("fix add")
        await wait_for(pilot, lambda: approval_open(app))
        screen = app.screen
        await pilot.pause()  # laid out
        summary = str(screen.query_one("#approval-summary").render())
        assert summary == "edit calc.py: 1 replacement (+1 -1 lines)"
        assert "+    return a + b" in screen.preview.body
        assert screen.query_one("#approval-args").region.height >= 8  # the diff is on screen
        assert unchanged(target, before)  # asking is not doing
        await pilot.press("4", "enter")
        await wait_for(pilot, lambda: not app.busy)
    assert unchanged(target, before)


async def test_a_long_command_is_shown_whole_and_wrapped(home, workdir):
    command = "touch " + " ".join(f"file-number-{i:03d}.txt" for i in range(120))
    call = {"name": "bash", "arguments": {"command": command}}
    app, _ = scripted_app(home, workdir, [{"tool_calls": [call]}, {"text": "ok"}])
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("print")
        await wait_for(pilot, lambda: approval_open(app))
        await pilot.pause()  # laid out
        args = app.screen.query_one("#approval-args")
        assert str(args.render()) == command
        assert args.virtual_region.height > 10 and args.virtual_region.width < 100  # wrapped
        await pilot.press("4", "enter")
        await wait_for(pilot, lambda: not app.busy)
    assert not list(workdir.glob("file-number-*"))
