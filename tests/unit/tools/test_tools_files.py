"""read_file, write_file and edit on real temp files: encodings, line endings, atomicity, errors."""

from __future__ import annotations

import codecs
import os
import re
import stat

import pytest

from tools.base import ToolContext, ToolError, parse_args
from tools.edit import EditTool
from tools.read_file import MAX_BYTES, ReadFileTool
from tools.write_file import WriteFileTool


async def call(tool, tmp_path, **args):
    return await tool.run(parse_args(tool, args), ToolContext(cwd=tmp_path))


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.asyncio
async def test_read_numbers_lines_and_pages(tmp_path):
    (tmp_path / "a.txt").write_text("".join(f"row {i}\n" for i in range(1, 11)))
    result = await call(ReadFileTool(), tmp_path, path="a.txt", offset=3, limit=2)
    assert result.text.splitlines() == [
        "     3\trow 3",
        "     4\trow 4",
        "[showing lines 3-4 of 10; call read_file with offset=5 to read more]",
    ]
    whole = await call(ReadFileTool(), tmp_path, path=str(tmp_path / "a.txt"))
    assert whole.text.splitlines()[-1] == "    10\trow 10"
    with pytest.raises(ToolError, match=r"offset 11 is past the end of a\.txt \(10 lines\)"):
        await call(ReadFileTool(), tmp_path, path="a.txt", offset=11)


@pytest.mark.asyncio
async def test_read_caps_lines_and_bytes(tmp_path):
    (tmp_path / "long.txt").write_text("x\n" * 5000)
    result = await call(ReadFileTool(), tmp_path, path="long.txt")
    lines = result.text.splitlines()
    assert len(lines) == 2001
    assert (
        lines[-1] == "[showing lines 1-2000 of 5000; call read_file with offset=2001 to read more]"
    )
    (tmp_path / "wide.txt").write_text(("y" * 1000 + "\n") * 500)
    wide = await call(ReadFileTool(), tmp_path, path="wide.txt")
    assert len(wide.text.encode()) <= MAX_BYTES + 200
    assert "call read_file with offset=" in wide.text.splitlines()[-1]


@pytest.mark.asyncio
async def test_read_refuses_binary_and_directories(tmp_path):
    (tmp_path / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100))
    with pytest.raises(ToolError, match=re.escape("img.png is a binary file")):
        await call(ReadFileTool(), tmp_path, path="img.png")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ToolError, match="sub is a directory"):
        await call(ReadFileTool(), tmp_path, path="sub")


@pytest.mark.asyncio
async def test_read_missing_file_suggests_names(tmp_path):
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "config.py").write_text("x = 1\n")
    (tmp_path / "src" / "settings.py").write_text("y = 2\n")
    with pytest.raises(ToolError) as info:
        await call(ReadFileTool(), tmp_path, path="src/setings.py")
    assert str(info.value).startswith(
        "file not found: src/setings.py; did you mean src/settings.py"
    )
    with pytest.raises(ToolError, match=re.escape("did you mean src/pkg/config.py")):
        await call(ReadFileTool(), tmp_path, path="config.py")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (codecs.BOM_UTF8 + "héllo\r\nwörld\r\n".encode(), ["héllo", "wörld"]),
        (codecs.BOM_UTF16_LE + "héllo\nwörld\n".encode("utf-16-le"), ["héllo", "wörld"]),
        (codecs.BOM_UTF16_BE + "日本\n".encode("utf-16-be"), ["日本"]),
        ("café “quoted”\n".encode("cp1252"), ["café “quoted”"]),
        ("naïve\n".encode("latin-1"), ["naïve"]),
    ],
)
async def test_read_decodes_encodings(tmp_path, data, expected):
    (tmp_path / "f.txt").write_bytes(data)
    result = await call(ReadFileTool(), tmp_path, path="f.txt")
    assert [line.split("\t", 1)[1] for line in result.text.splitlines()] == expected


@pytest.mark.asyncio
async def test_write_creates_dirs_and_returns_diff(tmp_path):
    result = await call(WriteFileTool(), tmp_path, path="new/deep/a.py", content="print(1)\n")
    assert (tmp_path / "new/deep/a.py").read_text() == "print(1)\n"
    assert result.text == "Created new/deep/a.py (1 lines)"
    assert result.diff.splitlines()[:3] == ["--- /dev/null", "+++ b/new/deep/a.py", "@@ -0,0 +1 @@"]
    again = await call(WriteFileTool(), tmp_path, path="new/deep/a.py", content="print(2)\n")
    assert "-print(1)" in again.diff and "+print(2)" in again.diff
    assert again.text == "Wrote new/deep/a.py (1 lines; +1 -1)"
    assert leftovers(tmp_path / "new/deep") == []


@pytest.mark.asyncio
async def test_write_keeps_crlf_bom_and_mode(tmp_path):
    target = tmp_path / "w.bat"
    target.write_bytes(codecs.BOM_UTF8 + b"@echo off\r\nrem\r\n")
    target.chmod(0o755)
    await call(WriteFileTool(), tmp_path, path="w.bat", content="@echo on\nrem\nexit\n")
    assert target.read_bytes() == codecs.BOM_UTF8 + b"@echo on\r\nrem\r\nexit\r\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert leftovers(tmp_path) == []


@pytest.mark.asyncio
async def test_write_through_symlink_keeps_the_link(tmp_path):
    (tmp_path / "real.txt").write_text("old\n")
    (tmp_path / "link.txt").symlink_to("real.txt")
    await call(WriteFileTool(), tmp_path, path="link.txt", content="new\n")
    assert (tmp_path / "link.txt").is_symlink()
    assert (tmp_path / "real.txt").read_text() == "new\n"


@pytest.mark.asyncio
async def test_edit_preserves_crlf_and_bom(tmp_path):
    target = tmp_path / "crlf.txt"
    target.write_bytes(codecs.BOM_UTF8 + b"one\r\ntwo\r\nthree\r\n")
    result = await call(
        EditTool(), tmp_path, path="crlf.txt", old_string="one\ntwo", new_string="uno\ndos\nmas"
    )
    assert target.read_bytes() == codecs.BOM_UTF8 + b"uno\r\ndos\r\nmas\r\nthree\r\n"
    assert result.text == "Edited crlf.txt: 1 replacement at line 1 (+3 -2 lines)"
    assert "-one\n" in result.diff and "+mas\n" in result.diff
    assert "\r" not in result.diff
    assert leftovers(tmp_path) == []


@pytest.mark.asyncio
async def test_edit_preserves_utf16_and_cp1252(tmp_path):
    wide = tmp_path / "wide.txt"
    wide.write_bytes(codecs.BOM_UTF16_LE + "Grüße\r\nWelt\r\n".encode("utf-16-le"))
    await call(EditTool(), tmp_path, path="wide.txt", old_string="Welt", new_string="Wörld")
    assert wide.read_bytes() == codecs.BOM_UTF16_LE + "Grüße\r\nWörld\r\n".encode("utf-16-le")
    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes("prix: 5 €\n".encode("cp1252"))
    await call(EditTool(), tmp_path, path="legacy.txt", old_string="5 €", new_string="6 €")
    assert legacy.read_bytes() == "prix: 6 €\n".encode("cp1252")
    with pytest.raises(ToolError, match="stored as cp1252 and cannot hold '😀'"):
        await call(EditTool(), tmp_path, path="legacy.txt", old_string="6", new_string="😀")
    assert legacy.read_bytes() == "prix: 6 €\n".encode("cp1252")


@pytest.mark.asyncio
async def test_edit_mixed_line_endings_stay_mixed(tmp_path):
    target = tmp_path / "mixed.txt"
    target.write_bytes(b"a\r\nb\r\nc\nd\n")
    await call(EditTool(), tmp_path, path="mixed.txt", old_string="a\nb", new_string="A\nB")
    assert target.read_bytes() == b"A\r\nB\r\nc\nd\n"
    await call(EditTool(), tmp_path, path="mixed.txt", old_string="c\nd", new_string="C\nD")
    assert target.read_bytes() == b"A\r\nB\r\nC\nD\n"


@pytest.mark.asyncio
async def test_edit_keeps_mode(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("echo hi\n")
    script.chmod(0o750)
    await call(EditTool(), tmp_path, path="run.sh", old_string="hi", new_string="bye")
    assert stat.S_IMODE(script.stat().st_mode) == 0o750
    assert script.read_text() == "echo bye\n"


@pytest.mark.asyncio
async def test_edit_not_found_shows_closest_lines(tmp_path):
    (tmp_path / "m.py").write_text(
        "import os\n\n\ndef compute_total(items):\n    return sum(items)\n\nprint(1)\n"
    )
    with pytest.raises(ToolError) as info:
        await call(
            EditTool(),
            tmp_path,
            path="m.py",
            old_string="def compute_totals(items):\n    return sum(item)",
            new_string="x",
        )
    message = str(info.value)
    assert message.startswith("old_string was not found in m.py; the closest text is at line 4")
    assert "     4\tdef compute_total(items):" in message
    assert "     5\t    return sum(items)" in message


@pytest.mark.asyncio
async def test_edit_whitespace_mismatch_is_explained(tmp_path):
    (tmp_path / "t.py").write_text("if x:\n\tcall()\n")
    with pytest.raises(ToolError, match="lines 1-2 match it when whitespace is ignored"):
        await call(
            EditTool(), tmp_path, path="t.py", old_string="if x:\n    call()", new_string="y"
        )


@pytest.mark.asyncio
async def test_edit_multiple_matches_and_replace_all(tmp_path):
    target = tmp_path / "d.txt"
    target.write_text("x = 1\ny = 2\nx = 1\n\nx = 1\n")
    with pytest.raises(
        ToolError, match=r"occurs 3 times in d.txt \(at lines 1, 3, 5\).*replace_all"
    ):
        await call(EditTool(), tmp_path, path="d.txt", old_string="x = 1", new_string="x = 9")
    result = await call(
        EditTool(), tmp_path, path="d.txt", old_string="x = 1", new_string="x = 9", replace_all=True
    )
    assert target.read_text() == "x = 9\ny = 2\nx = 9\n\nx = 9\n"
    assert result.data["replacements"] == 3
    assert result.text.startswith("Edited d.txt: 3 replacements at lines 1, 3, 5")


@pytest.mark.asyncio
async def test_edit_usage_errors(tmp_path):
    (tmp_path / "e.txt").write_text("abc\n")
    with pytest.raises(ToolError, match="identical"):
        await call(EditTool(), tmp_path, path="e.txt", old_string="abc", new_string="abc")
    with pytest.raises(ToolError, match="old_string is empty"):
        await call(EditTool(), tmp_path, path="e.txt", old_string="", new_string="x")
    with pytest.raises(ToolError, match=re.escape("file not found: f.txt; did you mean e.txt")):
        await call(EditTool(), tmp_path, path="f.txt", old_string="a", new_string="b")
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01abc")
    with pytest.raises(ToolError, match="binary"):
        await call(EditTool(), tmp_path, path="bin.dat", old_string="abc", new_string="x")
    assert (tmp_path / "e.txt").read_text() == "abc\n"


@pytest.mark.asyncio
async def test_failed_write_leaves_original_and_no_temp(tmp_path):
    target = tmp_path / "ro" / "f.txt"
    target.parent.mkdir()
    target.write_text("keep\n")
    target.parent.chmod(0o500)
    try:
        if os.access(target.parent, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(ToolError, match="permission denied"):
            await call(EditTool(), tmp_path, path="ro/f.txt", old_string="keep", new_string="lose")
    finally:
        target.parent.chmod(0o700)
    assert target.read_text() == "keep\n"
    assert leftovers(target.parent) == []


@pytest.mark.asyncio
async def test_interrupted_replace_leaves_original_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_text("keep\n")

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(
        ToolError, match=re.escape("could not write f.txt: No space left on device")
    ):
        await call(EditTool(), tmp_path, path="f.txt", old_string="keep", new_string="lose")
    with pytest.raises(ToolError, match=re.escape("could not write f.txt")):
        await call(WriteFileTool(), tmp_path, path="f.txt", content="lose\n")
    assert target.read_text() == "keep\n"
    assert leftovers(tmp_path) == []
