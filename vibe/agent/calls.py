"""Running the tool calls of one model turn for the agent loop (vibe.agent.loop): concurrently
where their footprints allow, each validated, checked against the permission policy, asked
about when needed (one approval at a time), run, redacted and clipped, and saved to the session
as it finishes; every call gets exactly one result, cancelled ones included, in call order."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from tools.base import ToolContext, ToolError, parse_args
from tools.permissions import evaluate, session_pattern
from vibe.agent.approval import ApprovalRequest
from vibe.agent.clip import clip_middle
from vibe.agent.footprint import dependencies, footprint
from vibe.agent.history import CANCELLED, cancelled_result
from vibe.config.secrets import redact
from vibe.events import ToolCallFinished, ToolCallStarted, ToolOutput
from vibe.hooks import points as hook_points
from vibe.images import tool_images
from vibe.messages import Message, ToolCall, parse_arguments

if TYPE_CHECKING:
    from vibe.agent.loop import Agent

log = logging.getLogger(__name__)


async def execute(agent: Agent, calls: list[ToolCall]) -> None:
    """Run the calls of one model turn, concurrently where their footprints allow (see
    vibe.agent.footprint); one result per call, saved as it finishes, kept in call order."""
    parsed = [parse_arguments(call.arguments) for call in calls]
    for call, arguments in zip(calls, parsed, strict=True):
        agent._emit(ToolCallStarted(call.id, call.name, arguments, call.arguments))
    prints = [
        footprint(agent.tools.get(call.name), arguments, agent.settings.cwd)
        for call, arguments in zip(calls, parsed, strict=True)
    ]
    tasks: list[asyncio.Task[Message]] = []
    for call, before in zip(calls, dependencies(prints), strict=True):
        tasks.append(asyncio.create_task(_call(agent, call, [tasks[j] for j in before])))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        try:
            # Let cancelled tools finish killing their processes (and a file write that
            # started finish, with its real result) before the results are recorded.
            await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
        finally:
            _record(agent, calls, tasks)


def _record(agent: Agent, calls: list[ToolCall], tasks: list[asyncio.Task[Message]]) -> None:
    """One result per call into the history, in call order; cancelled ones are saved now."""
    for call, task in zip(calls, tasks, strict=True):
        if task.done() and not task.cancelled() and task.exception() is None:
            message = task.result()  # saved when it finished
        else:
            agent._emit(ToolCallFinished(call.id, call.name, "cancelled", CANCELLED))
            message = cancelled_result(call.id, call.name)
            agent.session.append(message, remember=False)
        agent.messages.append(message)
        agent.session.messages.append(message)


async def _call(agent: Agent, call: ToolCall, before: list[asyncio.Task[Message]]) -> Message:
    """Wait for the calls this one must follow, run it, save its result at once."""
    if before:
        await asyncio.wait(before)
    started = time.monotonic()
    status, text, diff, data = await _invoke(agent, call)
    # An image read_file or an MCP tool returned: attached, or a notice (vibe.images).
    text, images, data = tool_images(text, data, agent.settings.model, agent.provider)
    if agent.settings.annotate is not None:  # a subfolder's AGENTS.md, the first time
        text = agent.settings.annotate(call.name, call.arguments, status, text)
    secrets = agent.settings.secrets
    # Last resort: read_file, grep and bash fit their answers to the cap themselves.
    text = clip_middle(redact(text, secrets), agent.settings.max_tool_output_bytes, unit="bytes")
    diff = redact(diff, secrets) if diff else diff
    ms = int((time.monotonic() - started) * 1000)
    if agent.settings.hooks:
        text = await hook_points.after_tool(agent, call, status, text, ms)
    message = Message("tool", text, tool_call_id=call.id, name=call.name, images=images)
    agent.session.append(message, remember=False)  # before anyone hears it finished
    agent._emit(ToolCallFinished(call.id, call.name, status, text, diff, data, ms))
    return message


async def _invoke(
    agent: Agent, call: ToolCall
) -> tuple[str, str, str | None, dict[str, Any] | None]:
    """Validate, check permission, ask if needed, run: (status, text for the model, diff, data)."""
    tool = agent.tools.get(call.name)
    if tool is None:
        known = ", ".join(sorted(agent.tools)) or "none"
        return (
            "error",
            f"Error: unknown tool {call.name!r}. Available tools: {known}.",
            None,
            None,
        )
    try:
        args = parse_args(tool, call.arguments)
    except ToolError as exc:
        return "error", f"Error: {exc}. The call was not run; fix the arguments.", None, None
    raw = args.model_dump(exclude_none=True)
    try:
        verdict = evaluate(
            call.name, raw, agent.settings.policy, agent.settings.cwd, tuple(agent.session_rules)
        )
        refusal = None
        if verdict.action == "ask":
            refusal = await ask(agent, call, raw, verdict.reason)
    except (ValueError, RecursionError) as exc:  # e.g. a NUL byte in a path
        return "error", f"Error: {exc}. The call was not run; fix the arguments.", None, None
    if verdict.action == "deny":
        return "denied", f"Denied by the permission policy: {verdict.reason}", None, None
    if refusal is not None:
        return "denied", refusal, None, None
    if agent.settings.hooks:
        stop, args = await hook_points.before_tool(agent, call, tool, args, raw)
        if stop is not None:
            return stop
    cancel = asyncio.Event()
    secrets = agent.settings.secrets
    ctx = ToolContext(
        agent.settings.cwd,
        lambda out: agent._emit(ToolOutput(call.id, redact(out, secrets))),
        cancel,
        output_cap=agent.settings.max_tool_output_bytes,
        call_id=call.id,
        host=agent,
        files=agent.settings.files,
    )
    if agent.settings.before_run is not None:
        agent.settings.before_run(call.name, args.model_dump(exclude_none=True))
    try:
        result = await tool.run(args, ctx)
    except ToolError as exc:
        return "error", f"Error: {exc}", None, None
    except asyncio.CancelledError:
        cancel.set()
        raise
    except Exception as exc:  # a tool bug must not end the run: the model is told
        log.exception("tool %s failed", call.name)
        return "error", f"Error: {call.name} failed: {type(exc).__name__}: {exc}", None, None
    return ("ok" if result.ok else "error"), result.text, result.diff, result.data


async def ask(agent: Agent, call: ToolCall, raw: dict[str, Any], reason: str) -> str | None:
    """Ask the approver (one request at a time); None if allowed, else the refusal text."""
    async with agent._approval_lock:
        # An earlier answer in this turn ("for this session") may already cover this call.
        again = evaluate(
            call.name, raw, agent.settings.policy, agent.settings.cwd, tuple(agent.session_rules)
        )
        if again.action == "allow":
            return None
        pattern = session_pattern(
            call.name, raw, cwd=agent.settings.cwd, policy=agent.settings.policy
        )
        decision = await agent.approver.decide(
            ApprovalRequest(call.id, call.name, raw, reason, pattern)
        )
    if not decision.allowed:
        text = f"Denied: {call.name} was not run ({reason})."
        return f"{text} {decision.feedback}".strip()
    if decision.choice in ("session", "always"):
        agent.session_rules.append((call.name, decision.pattern or pattern))
    if decision.choice == "always" and agent.settings.on_always is not None:
        agent.settings.on_always(call.name, decision.pattern or pattern)
    return None
