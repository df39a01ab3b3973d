"""The `grep` tool: regex search over files, with ripgrep when installed and a Python fallback.

Both run as a child process under a time budget, so a pattern that backtracks for ever, Esc
and --time-limit all stop the search. The answer is whole `path:line:text` rows that fit the
output cap, then how many matching lines were left out and how to narrow the search.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tools._grep_search import MAX_LINE_CHARS, SECRET_DIRS, SECRET_FILES
from tools._paths import display, missing_file_error, resolve
from tools._proc import kill_group
from tools.base import Tool, ToolContext, ToolError, ToolResult

DEFAULT_MAX_MATCHES = 100
MAX_OUTPUT_BYTES = 32 * 1024
DEFAULT_TIMEOUT_S = 30.0
COUNT_LIMIT = 100_000  # matching lines counted after the cap, to say how many were left out
_TRAILER_ROOM = 300  # bytes kept free for the closing note
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
# The fallback child: isolated (-I) and without site-packages (-S); it imports only stdlib.
_WORKER = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from tools._grep_search import main; sys.exit(main(sys.argv[2:]))"
)


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
        "matching line. Respects .gitignore and skips binary files and secret files (.env, "
        "*.pem, id_rsa...) unless one is given as the path."
    )
    Args: ClassVar[type[BaseModel]] = GrepArgs
    access: ClassVar[str] = "read"

    def __init__(self, use_ripgrep: bool | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.rg = shutil.which("rg") if use_ripgrep is not False else None
        if use_ripgrep and self.rg is None:
            raise ValueError("ripgrep (rg) is not installed")
        self.timeout = timeout

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, GrepArgs)
        if not args.pattern:
            raise ToolError("pattern is empty")
        target = resolve(ctx.cwd, args.path or ".")
        if not target.exists():
            raise missing_file_error(ctx.cwd, args.path or ".", target)
        cap = MAX_OUTPUT_BYTES if ctx.output_cap is None else min(ctx.output_cap, MAX_OUTPUT_BYTES)
        out = _Output(ctx.cwd, args.max_matches, cap - _TRAILER_ROOM)
        if self.rg is not None:
            command = _rg_command(self.rg, args, target)
        else:
            try:
                re.compile(args.pattern)
            except re.error as exc:
                raise ToolError(f"invalid regular expression {args.pattern!r}: {exc}") from None
            spec = {"pattern": args.pattern, "target": str(target), "glob": args.glob}
            command = [sys.executable, "-I", "-S", "-c", _WORKER, _PROJECT_ROOT, json.dumps(spec)]
        await _collect(command, out, self.timeout, args.pattern)
        return out.result(args, display(ctx.cwd, target))


class _Output:
    """Keeps the `path:line:text` rows that fit, in order, and counts the rest."""

    def __init__(self, cwd: Path, max_matches: int, budget: int) -> None:
        self.cwd = cwd
        self.max_matches = max_matches
        self.budget = budget
        self.rows: list[str] = []
        self.size = 0
        self.left_out = 0
        self.full_by = ""  # "matches" | "bytes" once nothing more is kept

    def add(self, path: Path, number: int, line: str) -> bool:
        """Record one match; False once enough are counted (the search should stop)."""
        if self.full_by:
            self.left_out += 1
            return self.left_out < COUNT_LIMIT
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + "..."
        row = f"{display(self.cwd, path)}:{number}:{line}"
        cost = len(row.encode("utf-8", errors="replace")) + 1
        if len(self.rows) >= self.max_matches or self.size + cost > self.budget:
            self.full_by = "matches" if len(self.rows) >= self.max_matches else "bytes"
            self.left_out = 1
            return True
        self.rows.append(row)
        self.size += cost
        return True

    def result(self, args: GrepArgs, where: str) -> ToolResult:
        scope = f" (files matching {args.glob})" if args.glob else ""
        if not self.rows and not self.full_by:
            return ToolResult(
                text=f"No matches for /{args.pattern}/ in {where}{scope}", data={"matches": 0}
            )
        more = f"at least {self.left_out}" if self.left_out >= COUNT_LIMIT else str(self.left_out)
        if self.full_by == "matches":
            note = (
                f"[stopped after {len(self.rows)} matches; {more} more matching lines left out: "
                "narrow the pattern, path or glob, or raise max_matches]"
            )
        elif self.full_by == "bytes":
            note = (
                f"[output cap reached after {len(self.rows)} matches; {more} more matching lines "
                "left out: narrow the pattern, path or glob]"
            )
        else:
            note = ""
        text = "\n".join([*self.rows, note] if note else self.rows)
        data: dict[str, int | bool] = {"matches": len(self.rows), "truncated": bool(self.full_by)}
        if self.full_by:
            data["left_out"] = self.left_out
        return ToolResult(text=text, data=data)


def _rg_command(rg: str, args: GrepArgs, target: Path) -> list[str]:
    command = [rg, "--no-config", "--line-number", "--no-heading", "--with-filename", "--null"]
    command += ["--color=never", "--no-messages", "--hidden", "--glob=!.git", "--sort=path"]
    command += [f"--max-columns={MAX_LINE_CHARS * 2}", "--max-columns-preview"]
    if args.glob:
        command.append(f"--glob={args.glob}")
    if target.is_dir():  # later globs win: secrets stay out whatever the model's glob says
        command += [f"--glob=!{name}" for name in (*SECRET_FILES, *SECRET_DIRS)]
    command += ["-e", args.pattern, "--", str(target)]
    return command


async def _collect(command: list[str], out: _Output, timeout: float, pattern: str) -> None:
    """Run a search child, feeding its `PATH\\0NUMBER:LINE` rows to `out`; kill it when `out`
    has enough, on timeout (a ToolError) or when cancelled."""
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        limit=1024 * 1024,
    )
    assert proc.stdout is not None and proc.stderr is not None
    finished = timed_out = False
    try:
        async with asyncio.timeout(timeout):
            while raw := await _readline(proc.stdout):
                name, _, rest = raw.rstrip(b"\n").partition(b"\0")
                number, _, line = rest.partition(b":")
                if not number.isdigit():
                    continue
                text = line.decode("utf-8", errors="replace").removesuffix("\r")
                path = Path(name.decode("utf-8", errors="replace"))
                if not out.add(path, int(number), text):
                    break
            else:
                finished = True
    except TimeoutError:
        timed_out = True
    finally:
        try:
            if finished:
                await proc.wait()
            else:
                await kill_group(proc.pid, lambda: proc.returncode is not None)
        finally:
            if proc.returncode is None:  # cancelled again while killing: no grace left
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
    if timed_out:
        raise ToolError(
            f"the search timed out after {timeout:g} s: the pattern /{pattern}/ may backtrack "
            "catastrophically (nested quantifiers such as (a+)+); simplify the pattern or "
            "narrow the path or glob"
        )
    if finished and proc.returncode not in (0, 1) and not out.rows:
        error = (await proc.stderr.read()).decode("utf-8", errors="replace").strip()
        raise ToolError(f"grep failed: {error.splitlines()[-1] if error else proc.returncode}")


async def _readline(stream: asyncio.StreamReader) -> bytes:
    """One row; a row longer than the stream's limit is skipped (whole), not fatal."""
    while True:
        try:
            return await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            await stream.readexactly(exc.consumed)  # drop the over-long part, keep reading
