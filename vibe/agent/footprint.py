"""Which calls of one model turn must wait for which: the order the model gave is kept for
calls that touch the same file (or a folder holding it) where either writes, and a call with
unknown effects (bash, an unknown or MCP tool) is a barrier that runs after every earlier call
and before every later one. Read-only calls on different paths run concurrently.

Also: the paths of write calls a killed run left unfinished, to clean their temp files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.base import Tool
from vibe.messages import Message, parse_arguments


@dataclass(frozen=True)
class Footprint:
    """What one call touches: `paths` (None: anything, a barrier) and whether it writes."""

    paths: tuple[Path, ...] | None
    writes: bool = False


BARRIER = Footprint(None, True)
NOTHING = Footprint((), False)
READ_ANY = Footprint((Path("/"),), False)  # overlaps every write, no other read


def footprint(tool: Tool | None, arguments: Mapping[str, Any] | None, cwd: Path) -> Footprint:
    """The footprint of a call of `tool` with its parsed `arguments` (None: invalid JSON)."""
    if tool is None:
        return BARRIER
    access = getattr(tool, "access", "any")
    access_for = getattr(tool, "access_for", None)  # a tool whose access depends on the call
    if callable(access_for) and arguments is not None:
        access = access_for(arguments)
    if access == "none":
        return NOTHING
    if access == "read_any":  # reads anywhere it may (a read-only subagent): after every write
        return READ_ANY
    if access not in ("read", "write"):
        return BARRIER
    if arguments is None:
        return NOTHING  # the arguments are not JSON: the call is rejected without running
    raw = arguments.get("path")
    if raw is None and access == "read":
        raw = "."  # grep's default: the working folder
    if not isinstance(raw, str) or not raw.strip():
        return NOTHING  # rejected by validation
    try:
        path = Path(os.path.realpath(cwd / os.path.expanduser(raw)))
    except (ValueError, OSError, RecursionError):
        return BARRIER  # it will fail, but keep it in order to be safe
    return Footprint((path,), access == "write")


def conflicts(a: Footprint, b: Footprint) -> bool:
    """Whether two calls must keep their order."""
    if a.paths is None or b.paths is None:
        return True
    if not (a.writes or b.writes):
        return False
    return any(_overlap(p, q) for p in a.paths for q in b.paths)


def _overlap(p: Path, q: Path) -> bool:
    return p == q or p.is_relative_to(q) or q.is_relative_to(p)


def dependencies(prints: Sequence[Footprint]) -> list[list[int]]:
    """For each call, the earlier calls it must wait for."""
    return [[j for j in range(i) if conflicts(prints[j], fp)] for i, fp in enumerate(prints)]


def unfinished_writes(
    messages: Sequence[Message], tools: Mapping[str, Tool], cwd: Path
) -> list[Path]:
    """The target paths of write calls that have no result in `messages` (a killed run)."""
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    out: list[Path] = []
    for message in messages:
        for call in message.tool_calls if message.role == "assistant" else ():
            tool = tools.get(call.name)
            if call.id in answered or getattr(tool, "access", "") != "write":
                continue
            fp = footprint(tool, parse_arguments(call.arguments), cwd)
            if fp.paths:
                out.extend(fp.paths)
    return out
