"""The `grep` tool: regex search over files, with ripgrep when installed and a Python fallback."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tools._paths import display, missing_file_error, resolve
from tools._proc import kill_group
from tools._text import SNIFF_BYTES, decode, looks_binary
from tools._walk import glob_matcher, list_files
from tools.base import Tool, ToolContext, ToolError, ToolResult

DEFAULT_MAX_MATCHES = 100
MAX_OUTPUT_BYTES = 32 * 1024
MAX_LINE_CHARS = 300
WHOLE_FILE_BYTES = 20 * 1024 * 1024


class GrepArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(description="Regular expression; prefix with (?i) to ignore case.")
    path: str | None = Field(
        default=None, description="File or folder to search; defaults to the working directory."
    )
    glob: str | None = Field(
        default=None,
        description="Only search files matching this glob, e.g. `*.py` or `*.{ts,tsx}`.",
    )
    max_matches: int = Field(
        default=DEFAULT_MAX_MATCHES,
        ge=1,
        le=2000,
        description="Stop after this many matching lines.",
    )


class GrepTool(Tool):
    name: ClassVar[str] = "grep"
    description: ClassVar[str] = (
        "Search file contents with a regular expression. Returns `path:line:text` for each "
        "matching line. Respects .gitignore and skips binary files."
    )
    Args: ClassVar[type[BaseModel]] = GrepArgs

    def __init__(self, use_ripgrep: bool | None = None) -> None:
        self.rg = shutil.which("rg") if use_ripgrep is not False else None
        if use_ripgrep and self.rg is None:
            raise ValueError("ripgrep (rg) is not installed")

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, GrepArgs)
        if not args.pattern:
            raise ToolError("pattern is empty")
        target = resolve(ctx.cwd, args.path or ".")
        if not target.exists():
            raise missing_file_error(ctx.cwd, args.path or ".", target)
        out = _Output(ctx.cwd, args.max_matches)
        if self.rg is not None:
            await _ripgrep(self.rg, args, target, out)
        else:
            try:
                regex = re.compile(args.pattern)
            except re.error as exc:
                raise ToolError(f"invalid regular expression {args.pattern!r}: {exc}") from None
            cancelled = ctx.cancel.is_set if ctx.cancel is not None else (lambda: False)
            await asyncio.to_thread(_search, regex, target, args.glob, out, cancelled)
        return out.result(args, display(ctx.cwd, target))


class _Output:
    """Collects `path:line:text` rows up to the match and byte caps."""

    def __init__(self, cwd: Path, max_matches: int) -> None:
        self.cwd = cwd
        self.max_matches = max_matches
        self.rows: list[str] = []
        self.size = 0
        self.truncated = False

    def add(self, path: Path, number: int, line: str) -> bool:
        """Record one match; False once a cap is reached (the search should stop)."""
        if len(self.rows) >= self.max_matches:
            self.truncated = True
            return False
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + "..."
        row = f"{display(self.cwd, path)}:{number}:{line}"
        if self.size + len(row) + 1 > MAX_OUTPUT_BYTES:
            self.truncated = True
            return False
        self.rows.append(row)
        self.size += len(row) + 1
        return True

    def result(self, args: GrepArgs, where: str) -> ToolResult:
        if not self.rows:
            scope = f" (files matching {args.glob})" if args.glob else ""
            return ToolResult(
                text=f"No matches for /{args.pattern}/ in {where}{scope}", data={"matches": 0}
            )
        text = "\n".join(self.rows)
        if self.truncated:
            text += (
                f"\n[stopped after {len(self.rows)} matches; narrow the pattern, path or glob, "
                "or raise max_matches]"
            )
        return ToolResult(text=text, data={"matches": len(self.rows), "truncated": self.truncated})


def _search(
    regex: re.Pattern[str],
    target: Path,
    glob: str | None,
    out: _Output,
    cancelled: Callable[[], bool],
) -> None:
    matcher = glob_matcher(glob)
    files = [target] if target.is_file() else list_files(target)
    for path in files:
        if cancelled():
            return
        if (
            matcher is not None
            and path != target
            and not matcher.match(path.relative_to(target).as_posix())
        ):
            continue
        for number, line in _lines(path):
            if regex.search(line) and not out.add(path, number, line):
                return


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open("rb") as handle:
            sample = handle.read(SNIFF_BYTES)
            if looks_binary(sample):
                return
            if path.stat().st_size <= WHOLE_FILE_BYTES:
                text = decode(sample + handle.read()).text
                for number, line in enumerate(text.split("\n"), start=1):
                    yield number, line.removesuffix("\r")
                return
            handle.seek(0)
            for number, raw in enumerate(handle, start=1):
                yield number, raw.decode("utf-8", errors="replace").rstrip("\r\n")
    except OSError:
        return


async def _ripgrep(rg: str, args: GrepArgs, target: Path, out: _Output) -> None:
    command = [rg, "--no-config", "--line-number", "--no-heading", "--with-filename", "--null"]
    command += ["--color=never", "--no-messages", "--hidden", "--glob=!.git", "--sort=path"]
    if args.glob:
        command.append(f"--glob={args.glob}")
    command += ["-e", args.pattern, "--", str(target)]
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    finished = False
    try:
        async for raw in proc.stdout:
            name, _, rest = raw.rstrip(b"\n").partition(b"\0")
            number, _, line = rest.partition(b":")
            text = line.decode("utf-8", errors="replace").removesuffix("\r")
            if not out.add(Path(name.decode("utf-8", errors="replace")), int(number), text):
                break
        else:
            finished = True
    finally:
        if finished:
            await proc.wait()
        else:
            await kill_group(proc.pid, lambda: proc.returncode is not None)
    if proc.returncode == 2 and not out.rows:
        error = (await proc.stderr.read()).decode("utf-8", errors="replace").strip()
        raise ToolError(f"grep failed: {error or 'ripgrep exited with status 2'}")
