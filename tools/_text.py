"""Text files as tools see them: encoding, BOM and line-ending detection, binary sniffing,
atomic writes and diffs.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import difflib
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tools.errors import ToolError

SNIFF_BYTES = 8192
T = TypeVar("T")
A = TypeVar("A")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Control bytes that do not occur in text (tab, newlines, form feed, escape are fine).
_CONTROL = bytes(b for b in range(32) if b not in (8, 9, 10, 12, 13, 27))


@dataclass(frozen=True)
class TextFile:
    """A decoded file; `text` has `\\n` endings when the file was all CRLF, else it is verbatim."""

    text: str
    encoding: str
    bom: bytes = b""
    newline: str = "\n"

    def encode(self, text: str) -> bytes:
        """Encode `text` (with `\\n` newlines) the way this file was stored."""
        if self.newline != "\n":
            text = text.replace("\r\n", "\n").replace("\n", self.newline)
        try:
            return self.bom + text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end]
            raise ToolError(
                f"the file is stored as {self.encoding} and cannot hold {bad!r}; "
                "use characters that encoding supports"
            ) from None


def split_bom(data: bytes) -> tuple[bytes, str | None]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return bom, encoding
    return b"", None


def looks_binary(sample: bytes) -> bool:
    """True for data that is not text: NUL bytes (without a UTF-16/32 BOM) or many control bytes."""
    if split_bom(sample)[1] is not None:
        return False
    if b"\x00" in sample:
        return True
    if not sample:
        return False
    controls = sum(sample.count(bytes([b])) for b in _CONTROL)
    return controls / len(sample) > 0.1


def decode(data: bytes) -> TextFile:
    """Decode file bytes: BOM first, then strict UTF-8, then cp1252, then latin-1 (never fails)."""
    bom, encoding = split_bom(data)
    body = data[len(bom) :]
    if encoding is not None:
        text = body.decode(encoding, errors="replace")
    else:
        for encoding in ("utf-8", "cp1252", "latin-1"):
            try:
                text = body.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    crlf = text.count("\r\n")
    if crlf and crlf == text.count("\n"):
        return TextFile(text.replace("\r\n", "\n"), encoding, bom, "\r\n")
    return TextFile(text, encoding, bom, "\n")


def sniff_encoding(sample: bytes) -> str:
    """The encoding `decode` would pick, judged from the first bytes of a larger file."""
    encoding = split_bom(sample)[1]
    if encoding is not None:
        return encoding
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sample's end is still UTF-8.
        if exc.start < len(sample) - 3:
            return "cp1252"
    return "utf-8"


def read_text(path: Path, display: str) -> TextFile:
    """Read and decode `path`; ToolError if it is binary. `display` names it in messages."""
    data = path.read_bytes()
    if looks_binary(data[:SNIFF_BYTES]):
        raise ToolError(
            f"{display} is a binary file ({len(data)} bytes); only text files are supported"
        )
    return decode(data)


async def finish_write(fn: Callable[..., T], *args: Any) -> T:
    """Run a file-changing function in a thread to its end, even when the caller is cancelled
    meanwhile (it takes milliseconds): a write then either did not start or is reported with
    its real result, never "cancelled" while it happened."""
    job = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        if job.cancelled():
            raise
        return await job


async def write_via(
    files: Any,
    through: Callable[[Any, A, Path], Awaitable[T | None]],
    disk: Callable[[A, Path], T],
    args: A,
    cwd: Path,
) -> T:
    """A file-changing tool call: `through` the editor's buffers (`files`, a
    tools.base.FileAccess from vibe.acp) when it takes the file, else `disk` (finish_write)."""
    if files is not None:
        result = await through(files, args, cwd)
        if result is not None:
            return result
    return await finish_write(disk, args, cwd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` via a temp file in the same folder; keep the file's mode.

    The temp file is `.NAME.<pid>.<random>.vibe.tmp`: one left by a killed process (dead pid)
    is removed before the next write beside it, and none survives an error or a cancel here."""
    target = path.resolve()  # write through symlinks instead of replacing the link
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    clean_stale_temps(target)
    fd, tmp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_TEMP_SUFFIX = ".vibe.tmp"


def _temp_stem(target: Path) -> str:
    """`.NAME.` with NAME shortened so that the temp file name stays under NAME_MAX."""
    name = target.name
    while len(name.encode("utf-8", errors="surrogateescape")) > 180:
        name = name[: len(name) // 2]
    return f".{name}."


def _create_temp(target: Path) -> tuple[int, str]:
    stem = _temp_stem(target)
    for _ in range(100):
        tmp = target.parent / f"{stem}{os.getpid()}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name beside {target}")


def temp_files(target: Path) -> list[tuple[Path, int]]:
    """The write temp files beside `target` (any process's), with the pid that made each."""
    stem = _temp_stem(target)
    pattern = re.compile(re.escape(stem) + r"(\d+)\.[0-9a-f]+" + re.escape(_TEMP_SUFFIX) + r"\Z")
    found: list[tuple[Path, int]] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return found
    for entry in entries:
        match = pattern.match(entry.name)
        if match is not None:
            found.append((Path(entry.path), int(match.group(1))))
    return found


def clean_stale_temps(target: Path) -> int:
    """Remove the temp files beside `target` whose writer is dead (killed mid-write);
    returns how many were removed."""
    removed = 0
    for tmp, pid in temp_files(target):
        if pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _umask() -> int:
    # Reading the umask means setting it; /proc avoids that race where available.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


MAX_DIFF_INPUT = 2 * 1024 * 1024  # larger rewrites get a summary instead of a diff


def unified_diff(old: str | None, new: str, shown: str) -> str | None:
    """A git-style unified diff from `old` (None: a new file) to `new`; None if too big."""
    if len(old or "") + len(new) > MAX_DIFF_INPUT:
        return None
    before = (old or "").splitlines(keepends=True)
    after = new.splitlines(keepends=True)
    lines = difflib.unified_diff(
        before,
        after,
        fromfile="/dev/null" if old is None else f"a/{shown}",
        tofile=f"b/{shown}",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def count_changes(diff: str | None) -> tuple[int, int]:
    """Added and removed line counts of a unified diff."""
    if not diff:
        return 0, 0
    added = removed = 0
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed
