"""Typed events of an agent run: the only thing the TUI and the headless runner see."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vibe.messages import Message, Usage


@dataclass(frozen=True)
class TextDelta:
    """A fragment of the assistant's answer."""

    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """A fragment of the model's reasoning (kept out of the answer)."""

    text: str


@dataclass(frozen=True)
class AssistantMessage:
    """A complete assistant message (text, reasoning and tool calls) after one model call."""

    message: Message


@dataclass(frozen=True)
class ToolCallStarted:
    """The model asked for a tool; `arguments` is the parsed object or None if invalid."""

    call_id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str


@dataclass(frozen=True)
class ToolOutput:
    """Live output of a running tool (bash), for display only."""

    call_id: str
    text: str


@dataclass(frozen=True)
class ToolCallFinished:
    """A tool call ended; `status` is ok | error | denied | cancelled."""

    call_id: str
    name: str
    status: str
    result: str
    diff: str | None = None
    data: dict[str, Any] | None = None
    duration_ms: int = 0


@dataclass(frozen=True)
class Compacted:
    """The context was compacted into a summary."""

    tokens_before: int
    tokens_after: int
    summary: str


@dataclass(frozen=True)
class UsageUpdated:
    """Totals after a model call, and the context size against the compaction threshold."""

    usage: Usage
    context_tokens: int
    threshold: int
    cost_usd: float


@dataclass(frozen=True)
class ErrorEvent:
    """A problem reported to the user (the run may continue or end)."""

    message: str


@dataclass(frozen=True)
class HookEvent:
    """A hook ran (vibe.hooks). decision: allow | deny | rewrite | warning (failed, ignored)."""

    name: str
    type: str  # pre_tool | post_tool | post_agent
    decision: str
    message: str = ""
    tool_name: str | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class SubagentEvent:
    """An event of a subagent run by the `task` call `parent_call_id` (vibe.subagents)."""

    parent_call_id: str
    agent: str
    event: Any


@dataclass(frozen=True)
class TurnFinished:
    """The run ended. status: completed | limit | error | interrupted. `warnings`: what was not
    a plain success although the run completed (an empty or reasoning-only answer, ...)."""

    status: str
    exit_code: int
    text: str
    num_turns: int
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    error: str | None = None
    warnings: tuple[str, ...] = ()


Event = (
    TextDelta
    | ReasoningDelta
    | AssistantMessage
    | ToolCallStarted
    | ToolOutput
    | ToolCallFinished
    | Compacted
    | UsageUpdated
    | ErrorEvent
    | HookEvent
    | SubagentEvent
    | TurnFinished
)
