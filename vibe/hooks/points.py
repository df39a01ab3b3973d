"""The hook points of the agent loop (vibe.agent.loop calls these, only when hooks exist):
`before_tool` after the permission verdict, `after_tool` once the result is redacted,
`after_answer` when a turn would end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from tools.base import Tool, ToolError, parse_args
from tools.permissions import evaluate
from vibe.messages import Message, ToolCall

if TYPE_CHECKING:
    from vibe.agent.loop import Agent

Result = tuple[str, str, str | None, dict[str, Any] | None]


async def before_tool(
    agent: Agent, call: ToolCall, tool: Tool, args: BaseModel, raw: dict[str, Any]
) -> tuple[Result | None, BaseModel]:
    """Run the pre_tool hooks. A denial or an invalid rewrite is the call's result; a rewrite
    is validated again and goes through the permission check again (it may ask or deny)."""
    hooks = agent.settings.hooks
    outcome = await hooks.pre_tool(call.id, call.name, raw, agent._emit)
    if outcome.deny is not None:
        return ("denied", outcome.deny, None, None), args
    if outcome.tool_input is not None:
        try:
            args = parse_args(tool, outcome.tool_input)
        except ToolError as exc:
            return (
                "error",
                f"Error: a hook rewrote the call into an invalid one: {exc}",
                None,
                None,
            ), args
        raw = args.model_dump(exclude_none=True)
        settings = agent.settings
        try:
            verdict = evaluate(
                call.name, raw, settings.policy, settings.cwd, tuple(agent.session_rules)
            )
            if verdict.action == "deny":
                text = (
                    f"Denied by the permission policy (input rewritten by a hook): {verdict.reason}"
                )
                return ("denied", text, None, None), args
            if verdict.action == "ask":
                refusal = await agent._ask(call, raw, verdict.reason)
                if refusal is not None:
                    return ("denied", refusal, None, None), args
        except (ValueError, RecursionError) as exc:
            return ("error", f"Error: {exc}. The call was not run.", None, None), args
    hooks.ran[call.id] = (raw, outcome.context)
    return None, args


async def after_tool(agent: Agent, call: ToolCall, status: str, text: str, ms: int) -> str:
    """Run the post_tool hooks of a call that ran; `text` with what the hooks added."""
    hooks = agent.settings.hooks
    ran = hooks.ran.pop(call.id, None)
    if ran is None:  # denied or invalid: the tool did not run
        return text
    raw, extra = ran
    extra = [*extra, *await hooks.post_tool(call.id, call.name, raw, status, text, ms, agent._emit)]
    return "\n\n".join([text, *extra]) if extra else text


async def after_answer(agent: Agent, retries: int) -> bool:
    """Run the post_agent hooks; True when one denied and the agent goes on (its reason is a
    new user message), at most MAX_POST_AGENT_RETRIES times a turn."""
    from vibe.hooks.manager import MAX_POST_AGENT_RETRIES

    if retries >= MAX_POST_AGENT_RETRIES:
        return False
    reason = await agent.settings.hooks.post_agent(agent._emit)
    if reason is None:
        return False
    agent._append(Message("user", reason))
    return True
