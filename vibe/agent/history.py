"""Validation and repair of the conversation before each request, so the API never sees an
invalid one: one system message first, every tool call answered by exactly one result right
after its assistant message, no orphan results, no empty assistant messages."""

from __future__ import annotations

import logging

from vibe.messages import Message

log = logging.getLogger(__name__)

CANCELLED = "Tool call cancelled: it did not run to completion (interrupted)."


def cancelled_result(call_id: str, name: str) -> Message:
    return Message(role="tool", content=CANCELLED, tool_call_id=call_id, name=name)


def repair(messages: list[Message]) -> list[Message]:
    """A valid copy of `messages`; the input is returned unchanged (same list) when valid."""
    out: list[Message] = []
    changed = False
    i = 0
    while i < len(messages):
        msg = messages[i]
        i += 1
        if msg.role == "system":
            if out:  # a system message can only open the conversation
                changed = True
                continue
            out.append(msg)
        elif msg.role == "tool":
            changed = True  # reached only for results with no call before them
            log.warning("dropping orphan tool result %s", msg.tool_call_id)
        elif msg.role == "assistant":
            if not msg.content and not msg.tool_calls:
                changed = True
                continue
            out.append(msg)
            if not msg.tool_calls:
                continue
            results: dict[str, Message] = {}
            while i < len(messages) and messages[i].role == "tool":
                res = messages[i]
                i += 1
                if res.tool_call_id in results or res.tool_call_id not in {
                    c.id for c in msg.tool_calls
                }:
                    changed = True
                    continue
                results[res.tool_call_id] = res
            expected = [c.id for c in msg.tool_calls]
            if list(results) != expected:
                changed = True
            for call in msg.tool_calls:
                out.append(results.get(call.id) or cancelled_result(call.id, call.name))
        elif out and out[-1].role == "user":
            # Consecutive user turns (e.g. after an interrupted, empty answer): merge them.
            out[-1] = Message(role="user", content=f"{out[-1].content}\n\n{msg.content}")
            changed = True
        else:
            out.append(msg)
    if changed:
        log.info("conversation repaired before the request")
        return out
    return messages


def in_call_order(messages: list[Message]) -> list[Message]:
    """The results of each assistant message's calls in the order of the calls: a session saves
    each result as it finishes, so its log holds them in finishing order."""
    out: list[Message] = []
    i = 0
    while i < len(messages):
        msg = messages[i]
        out.append(msg)
        i += 1
        if msg.role != "assistant" or not msg.tool_calls:
            continue
        end = i
        while end < len(messages) and messages[end].role == "tool":
            end += 1
        rank = {call.id: n for n, call in enumerate(msg.tool_calls)}
        out += sorted(messages[i:end], key=lambda m: rank.get(m.tool_call_id or "", len(rank)))
        i = end
    return out


def is_valid(messages: list[Message]) -> bool:
    return repair(messages) is messages
