"""The tool contract (Tool, ToolContext, ToolResult, ToolError), schema export, argument parsing."""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ValidationError

from tools.errors import ToolError

__all__ = [
    "FileAccess",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "parse_args",
    "tool_schema",
]


class FileAccess(Protocol):
    """Text files as an editor holds them. Paths are absolute and already permitted (the
    permission checks run before a tool does); None/False: not handled, use the disk."""

    async def read_text(self, path: Path) -> str | None: ...

    async def write_text(self, path: Path, content: str) -> bool: ...


@dataclass
class ToolContext:
    """What a tool may know about its caller: where it runs and how to report and stop."""

    cwd: Path
    on_output: Callable[[str], None] | None = None
    cancel: asyncio.Event | None = None
    # The most bytes of text the caller keeps from one result (the loop's max_tool_output_bytes):
    # tools that page (read_file, grep) or capture (bash) fit their whole answer within it.
    output_cap: int | None = None
    # The call being run, and the agent running it (for tools that run agents: `task`).
    call_id: str = ""
    host: Any = None
    # Where read_file/write_file/edit read and write text: None is the local disk; an editor
    # (vibe.acp) passes its own, so its unsaved buffers are what the tools see and change.
    files: FileAccess | None = None


@dataclass
class ToolResult:
    """The outcome of one tool call. `text` is what the model sees; the rest is for UIs."""

    text: str
    ok: bool = True
    diff: str | None = None
    data: dict[str, Any] | None = None


class Tool(ABC):
    """A tool the model can call: a name, a description, a pydantic `Args` model and `run`."""

    name: ClassVar[str]
    description: ClassVar[str]
    Args: ClassVar[type[BaseModel]]
    # How a call touches files, so the loop can order the calls of one turn: "read" or "write"
    # the file or folder named by its `path` argument, "read_any" (reads anywhere: after every
    # earlier write, beside other reads), "none" (no files), or "any" (unknown effects, e.g. a
    # shell: the call runs after every earlier call and before every later one).
    access: ClassVar[str] = "any"

    @abstractmethod
    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        """Run the tool with validated arguments."""


def tool_schema(tool: Tool | type[Tool]) -> dict[str, Any]:
    """The OpenAI function-tool description of `tool`, with a clean JSON schema of its `Args`
    (or, for a tool that brings its own JSON schema as `input_schema`, e.g. MCP, that one)."""
    raw = getattr(tool, "input_schema", None)
    if raw is not None:
        parameters = {"type": "object", **raw}
    else:
        schema = tool.Args.model_json_schema()
        defs = schema.pop("$defs", {})
        parameters = _clean(_inline_refs(schema, defs))
    parameters.setdefault("properties", {})
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": parameters,
        },
    }


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = dict(defs[ref.removeprefix("#/$defs/")])
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return _inline_refs({**target, **extra}, defs)
        return {k: _inline_refs(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def _clean(node: dict[str, Any]) -> dict[str, Any]:
    """Drop titles and `None` defaults; `anyOf[X, null]` becomes X (omitting the key means null)."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "default" and value is None:
            continue
        if key == "properties":
            out[key] = {name: _clean(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _clean(value)
        elif key == "anyOf":
            options = [_clean(sub) for sub in value if sub.get("type") != "null"]
            if len(options) == 1:
                out.update({k: v for k, v in options[0].items() if k not in out})
            else:
                out[key] = options
        else:
            out[key] = value
    return out


def parse_args(tool: Tool | type[Tool], raw_json: str | Mapping[str, Any]) -> BaseModel:
    """Validate the model's raw arguments for `tool`; raise ToolError with a readable message."""
    if isinstance(raw_json, Mapping):
        raw: Any = dict(raw_json)
    else:
        text = raw_json.strip()
        if not text:
            raw = {}
        else:
            try:
                raw = json.loads(text)
            except RecursionError:
                raise ToolError(f"arguments for {tool.name} are nested too deeply") from None
            except json.JSONDecodeError as exc:
                cut = " (the text ends early: was it cut off?)" if exc.pos >= len(text) else ""
                raise ToolError(
                    f"invalid JSON arguments for {tool.name}: {exc.msg} "
                    f"at line {exc.lineno} column {exc.colno} (character {exc.pos}){cut}"
                ) from None
    if not isinstance(raw, dict):
        raise ToolError(f"arguments for {tool.name} must be a JSON object, got {_json_type(raw)}")
    try:
        return tool.Args.model_validate(raw)
    except RecursionError:
        raise ToolError(f"arguments for {tool.name} are nested too deeply") from None
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise ToolError(f"invalid arguments for {tool.name}: {problems}") from None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _describe(err: Any) -> str:
    loc = ".".join(str(part) for part in err["loc"]) or "(arguments)"
    kind = err["type"]
    if kind == "missing":
        return f"missing required parameter '{loc}'"
    if kind == "extra_forbidden":
        return f"unknown parameter '{loc}'"
    got = err.get("input")
    return f"parameter '{loc}': {err['msg'].lower()} (got {_json_type(got)} {_short(got)})"


def _short(value: Any) -> str:
    try:
        text = json.dumps(value, default=str)
    except (RecursionError, ValueError):
        return "(nested too deeply to show)"
    return text if len(text) <= 60 else text[:57] + "..."
