"""The built-in tools, built from the `[tools.NAME]` tables of the config."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tools.base import Tool
from tools.bash import DEFAULT_TIMEOUT_S, OUTPUT_CAP_BYTES, BashTool
from tools.edit import EditTool
from tools.grep import GrepTool
from tools.read_file import ReadFileTool
from tools.todo import TodoTool
from tools.web_fetch import DEFAULT_TIMEOUT_S as FETCH_TIMEOUT_S
from tools.web_fetch import WebFetchTool
from tools.write_file import WriteFileTool

MAX_TIMEOUT_S = 86_400
MAX_FETCH_TIMEOUT_S = 300


def builtin_tools(
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    hidden_env: Iterable[str] = (),
    *,
    output_cap: int | None = None,
) -> dict[str, Tool]:
    """Fresh instances of every built-in tool by name; raises ValueError for a bad setting.

    `hidden_env`: variable names withheld from bash commands on top of the secret-looking
    ones (the providers' api_key_env_var); `[tools.bash] env_passthrough` lets names through.
    `output_cap`: bytes of command output bash keeps (head and tail)."""
    bash = (settings or {}).get("bash", {})
    timeout = _timeout(bash, "bash", DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S)
    fetch = (settings or {}).get("web_fetch", {})
    passthrough = bash.get("env_passthrough", ())
    if isinstance(passthrough, str) or not all(
        isinstance(n, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in passthrough
    ):
        raise ValueError(
            f"tools.bash.env_passthrough must be a list of variable names, got {passthrough!r}"
        )
    tools: list[Tool] = [
        BashTool(
            default_timeout=float(timeout),
            output_cap=output_cap or OUTPUT_CAP_BYTES,
            hidden_env=hidden_env,
            env_passthrough=passthrough,
        ),
        ReadFileTool(),
        WriteFileTool(),
        EditTool(),
        GrepTool(),
        TodoTool(),
        WebFetchTool(_timeout(fetch, "web_fetch", FETCH_TIMEOUT_S, MAX_FETCH_TIMEOUT_S)),
    ]
    return {tool.name: tool for tool in tools}


def _timeout(table: Mapping[str, Any], tool: str, default: float, most: float) -> float:
    """`[tools.TOOL] default_timeout` (seconds, at most `most`), else the tool's own default."""
    value = table.get("default_timeout", default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= most
    ):
        raise ValueError(
            f"tools.{tool}.default_timeout must be a number of seconds between 0 and "
            f"{most:g}, got {value!r}"
        )
    return float(value)
