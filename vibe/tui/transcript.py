"""A saved conversation (list of Message) → widget factories for the chat log, built lazily."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.widget import Widget

from vibe.messages import Message, parse_arguments
from vibe.tui.widgets.messages import AssistantText, ThoughtBlock, UserMessage
from vibe.tui.widgets.tool_card import ToolCard, summarize_args

Factory = Callable[[], Widget]


def factories(messages: list[Message]) -> list[Factory]:
    """One factory per visible entry; a tool result is folded into the card of its call."""
    results = {m.tool_call_id: m for m in messages if m.role == "tool" and m.tool_call_id}
    out: list[Factory] = []
    for m in messages:
        if m.role == "user":
            out.append(partial(UserMessage, m.content))
        elif m.role == "assistant":
            if m.reasoning:
                out.append(partial(ThoughtBlock, m.reasoning))
            if m.content:
                out.append(partial(AssistantText, m.content))
            for call in m.tool_calls:
                res = results.get(call.id)
                status = "ok" if res is not None else "cancelled"
                summary = summarize_args(call.name, parse_arguments(call.arguments), call.arguments)
                out.append(
                    partial(
                        ToolCard,
                        call.id,
                        call.name,
                        summary,
                        status=status,
                        result=res.content if res else "",
                    )
                )
    return out
