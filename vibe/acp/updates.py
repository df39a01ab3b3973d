"""The agent's events as ACP session/update notifications: message and thought chunks, tool
calls (kind, status, locations, a diff for edit/write_file, the command and its output for
bash), the todo list as a plan, usage; and a saved conversation replayed the same way."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acp import (
    plan_entry,
    start_tool_call,
    text_block,
    tool_content,
    tool_diff_content,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
    update_tool_call,
    update_user_message_text,
)
from acp.schema import Cost, ToolCallLocation, ToolCallUpdate, UsageUpdate

from vibe.events import (
    Compacted,
    Event,
    ReasoningDelta,
    SubagentEvent,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    ToolOutput,
    UsageUpdated,
)
from vibe.messages import Message

KINDS = {
    "read_file": "read",
    "edit": "edit",
    "write_file": "edit",
    "bash": "execute",
    "grep": "search",
    "web_fetch": "fetch",
    "task": "think",
    "todo": "think",
    "exit_plan_mode": "switch_mode",
}
MAX_TEXT = 20_000  # characters of a tool result or output shown in the editor
_REMINDER = re.compile(r"\s*<system-reminder>.*?</system-reminder>", re.DOTALL)

Reader = Callable[[Path], Awaitable[str | None]]


@dataclass
class _Call:
    name: str
    args: dict[str, Any]
    content: list[Any] = field(default_factory=list)  # kept on every update (they replace it)
    output: str = ""


class UpdateStream:
    """Converts one session's events; remembers each tool call until it finishes."""

    def __init__(self, cwd: Path, read_old: Reader | None = None) -> None:
        self.cwd, self.read_old = cwd, read_old
        self.calls: dict[str, _Call] = {}

    async def convert(self, event: Event) -> list[Any]:
        match event:
            case TextDelta(text=text) if text:
                return [update_agent_message_text(text)]
            case ReasoningDelta(text=text) if text:
                return [update_agent_thought_text(text)]
            case ToolCallStarted():
                return [await self.started(event.call_id, event.name, event.arguments)]
            case ToolOutput():
                return self.output(event.call_id, event.text)
            case ToolCallFinished():
                return self.finished(event.call_id, event.status, event.result)
            case Compacted():
                note = f"(context compacted: {event.tokens_before} → {event.tokens_after} tokens)"
                return [update_agent_thought_text(note)]
            case UsageUpdated():
                cost = Cost(amount=round(event.cost_usd, 6), currency="USD")
                return [
                    UsageUpdate(
                        session_update="usage_update",
                        used=max(0, event.context_tokens),
                        size=max(0, event.threshold),
                        cost=cost,
                    )
                ]
            case SubagentEvent(event=inner) if isinstance(inner, ToolCallStarted):
                args = inner.arguments
                name = f"{event.agent}: {inner.name}"
                return [await self.started(_sub(event, inner.call_id), name, args, inner.name)]
            case SubagentEvent(event=inner) if isinstance(inner, ToolCallFinished):
                return self.finished(_sub(event, inner.call_id), inner.status, inner.result)
            case _:
                return []

    async def started(
        self, call_id: str, label: str, arguments: dict[str, Any] | None, name: str = ""
    ) -> Any:
        name = name or label
        args = arguments or {}
        call = self.calls[call_id] = _Call(name, args)
        title, kind, locations = describe(name, args, self.cwd)
        call.content = await self._content(call)
        if label != name:
            title = f"{label.split(':')[0]}: {title}"
        return start_tool_call(
            call_id,
            title,
            kind=kind,  # type: ignore[arg-type]
            status="pending",
            content=call.content or None,
            locations=locations or None,
            raw_input=args,
        )

    async def _content(self, call: _Call) -> list[Any]:
        args = call.args
        path = args.get("path")
        if call.name == "edit" and isinstance(path, str):
            old, new = str(args.get("old_string", "")), str(args.get("new_string", ""))
            return [tool_diff_content(str(_abs(self.cwd, path)), new, old)]
        if call.name == "write_file" and isinstance(path, str):
            target = _abs(self.cwd, path)
            old = await self.read_old(target) if self.read_old is not None else None
            return [tool_diff_content(str(target), str(args.get("content", "")), old)]
        if call.name == "bash":
            return [tool_content(text_block(_fence(str(args.get("command", "")), "sh")))]
        return []

    def output(self, call_id: str, text: str) -> list[Any]:
        call = self.calls.get(call_id)
        if call is None:
            return []
        call.output = (call.output + text)[-MAX_TEXT:]
        content = [*call.content, tool_content(text_block(_fence(call.output)))]
        return [update_tool_call(call_id, status="in_progress", content=content)]

    def finished(self, call_id: str, status: str, result: str) -> list[Any]:
        call = self.calls.pop(call_id, None)
        done = "completed" if status == "ok" else "failed"
        shown = result if len(result) <= MAX_TEXT else result[:MAX_TEXT] + "\n[… cut]"
        if call is None:
            return [update_tool_call(call_id, status=done, raw_output=result)]
        content = list(call.content)
        if call.name == "bash":
            content.append(tool_content(text_block(_fence(shown))))
        elif call.name not in ("edit", "write_file") or status != "ok":
            content.append(tool_content(text_block(shown)))
        updates: list[Any] = [
            update_tool_call(call_id, status=done, content=content, raw_output=result)
        ]
        if call.name == "todo" and status == "ok":
            updates.append(plan(call.args))
        return updates

    def request(self, call_id: str, name: str, args: dict[str, Any]) -> ToolCallUpdate:
        """The tool call as a permission request shows it (a subagent's is not known here)."""
        call = self.calls.get(call_id)
        title, kind, locations = describe(name, args, self.cwd)
        return ToolCallUpdate(
            tool_call_id=call_id,
            title=title,
            kind=kind,  # type: ignore[arg-type]
            status="pending",
            content=(call.content if call is not None else None) or None,
            locations=locations or None,
            raw_input=args,
        )


def describe(name: str, args: dict[str, Any], cwd: Path) -> tuple[str, str, list[Any]]:
    """(title, kind, locations) of a tool call."""
    kind = KINDS.get(name, "other")
    path = args.get("path")
    where: list[Any] = []
    if isinstance(path, str) and path:
        line = args.get("offset") if name == "read_file" else None
        where = [
            ToolCallLocation(
                path=str(_abs(cwd, path)), line=line if isinstance(line, int) else None
            )
        ]
    match name:
        case "read_file":
            title = f"Read {path}"
        case "edit":
            title = f"Edit {path}"
        case "write_file":
            title = f"Write {path}"
        case "bash":
            title = (
                str(args.get("command", "bash")).strip().splitlines()[0][:200]
                if args.get("command")
                else "bash"
            )
        case "grep":
            title = f"grep {args.get('pattern', '')!r}" + (f" in {path}" if path else "")
        case "web_fetch":
            title = f"Fetch {args.get('url', '')}"
        case "todo":
            title = "Update the todo list"
        case "task":
            title = f"Task ({args.get('agent', 'explore')}): {str(args.get('task', ''))[:80]}"
        case _:
            title = name
    return title, kind, where


def plan(args: dict[str, Any]) -> Any:
    entries = [
        plan_entry(str(t.get("content", "")), status=t.get("status", "pending"))
        for t in args.get("todos") or []
        if isinstance(t, dict) and t.get("status") in ("pending", "in_progress", "completed")
    ]
    return update_plan(entries)


async def replay(messages: list[Message], stream: UpdateStream) -> list[Any]:
    """A saved conversation as the updates a client shows (session/load)."""
    out: list[Any] = []
    for message in messages:
        if message.role == "user":
            text = _REMINDER.sub("", message.content).strip()
            if text:
                out.append(update_user_message_text(text))
        elif message.role == "assistant":
            if message.reasoning:
                out.append(update_agent_thought_text(message.reasoning))
            if message.content:
                out.append(update_agent_message_text(message.content))
            for call in message.tool_calls:
                out.append(await stream.started(call.id, call.name, _parse(call.arguments)))
        elif message.role == "tool" and message.tool_call_id in stream.calls:
            failed = message.content.startswith(("Error", "Denied", "Tool call cancelled"))
            status = "error" if failed else "ok"
            out.extend(stream.finished(message.tool_call_id, status, message.content))
    return out


def _parse(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _abs(cwd: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else cwd / p


def _fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _sub(event: SubagentEvent, call_id: str) -> str:
    return f"{event.parent_call_id}/{call_id}"
