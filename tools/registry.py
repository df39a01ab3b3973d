"""The built-in tools, built from the `[tools.NAME]` tables of the config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.base import Tool
from tools.bash import DEFAULT_TIMEOUT_S, BashTool
from tools.edit import EditTool
from tools.grep import GrepTool
from tools.read_file import ReadFileTool
from tools.todo import TodoTool
from tools.write_file import WriteFileTool


def builtin_tools(settings: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Tool]:
    """Fresh instances of every built-in tool by name; raises ValueError for a bad setting."""
    bash = (settings or {}).get("bash", {})
    timeout = bash.get("default_timeout", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(
            f"tools.bash.default_timeout must be a positive number of seconds, got {timeout!r}"
        )
    tools: list[Tool] = [
        BashTool(default_timeout=float(timeout)),
        ReadFileTool(),
        WriteFileTool(),
        EditTool(),
        GrepTool(),
        TodoTool(),
    ]
    return {tool.name: tool for tool in tools}
