"""The `bash` tool: one non-interactive shell command per call; timeout, cancel, capped output."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tools._proc import run_shell, shell_env
from tools.base import Tool, ToolContext, ToolError, ToolResult

DEFAULT_TIMEOUT_S = 300.0
OUTPUT_CAP_BYTES = 30_000  # used only when the caller gives no output cap
_NOTES_ROOM = 200
# CSI/OSC escape sequences some tools print even with NO_COLOR; they only cost the model tokens.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\))")


class BashArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str = Field(description="The shell command to run (bash syntax).")
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="Seconds before the command is killed; defaults to the configured timeout.",
    )


class BashTool(Tool):
    name: ClassVar[str] = "bash"
    description: ClassVar[str] = (
        "Run a shell command with bash in the working directory and return its combined "
        "stdout and stderr and exit code. Non-interactive: stdin is closed, pagers and prompts "
        "are disabled. Long output keeps its beginning and end. Each call starts a fresh shell, "
        "so `cd` and variables do not carry over to the next call."
    )
    Args: ClassVar[type[BaseModel]] = BashArgs

    def __init__(
        self,
        default_timeout: float = DEFAULT_TIMEOUT_S,
        output_cap: int = OUTPUT_CAP_BYTES,
        *,
        hidden_env: Iterable[str] = (),
        env_passthrough: Iterable[str] = (),
    ) -> None:
        self.default_timeout = default_timeout
        self.output_cap = output_cap
        # Credentials are withheld from commands (see tools._proc.shell_env).
        self.hidden_env = frozenset(hidden_env)
        self.env_passthrough = frozenset(env_passthrough)

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, BashArgs)
        if not args.command.strip():
            raise ToolError("command is empty")
        if not ctx.cwd.is_dir():
            raise ToolError(f"working directory does not exist: {ctx.cwd}")
        timeout = args.timeout if args.timeout is not None else self.default_timeout
        cap = ctx.output_cap if ctx.output_cap is not None else self.output_cap
        result = await run_shell(
            args.command,
            cwd=ctx.cwd,
            timeout=timeout,
            # Room for the omission note and the status line: the whole answer fits the cap.
            cap_bytes=max(cap - _NOTES_ROOM, 0),
            on_output=ctx.on_output,
            cancel=ctx.cancel,
            env=shell_env(self.hidden_env, self.env_passthrough),
        )
        output = _ANSI.sub("", result.output).rstrip("\n")
        lines = [output] if output else ["(no output)"]
        if result.timed_out:
            lines.append(
                f"[timed out after {timeout:g} s; the command and its children were killed]"
            )
        elif result.cancelled:
            lines.append("[cancelled; the command and its children were killed]")
        elif result.exit_code is not None and result.exit_code < 0:
            lines.append(f"[killed by signal {-result.exit_code}]")
        else:
            lines.append(f"[exit code: {result.exit_code}]")
        return ToolResult(
            text="\n".join(lines),
            ok=result.exit_code == 0 and not (result.timed_out or result.cancelled),
            data={
                "exit_code": result.exit_code,
                "timed_out": result.timed_out,
                "cancelled": result.cancelled,
                "output_bytes": result.total_bytes,
                "omitted_bytes": result.omitted_bytes,
                "duration_s": round(result.duration_s, 3),
            },
        )
