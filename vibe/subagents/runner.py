"""Building and running one child agent for a `task` call: its tools, permissions, model,
session (`<parent session>/tasks/<call id>/`), approvals (through the parent's approver, one
at a time, labelled with the subagent) and budget (vibe.subagents.budget); its events go to
the parent's stream as SubagentEvent, with a progress line on the task card."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from tools.base import ToolContext, ToolResult
from vibe.agent.approval import ApprovalRequest, Decision
from vibe.agent.budget import Limits
from vibe.config.schema import ModeConfig
from vibe.events import SubagentEvent, ToolCallStarted, TurnFinished, UsageUpdated
from vibe.messages import Usage
from vibe.session import Session
from vibe.subagents.budget import ChildBudget
from vibe.subagents.profiles import DEFAULT_MAX_TURNS, NO_NESTING

if TYPE_CHECKING:
    from vibe.agent.loop import Agent

log = logging.getLogger(__name__)


class ChildApprover:
    """Asks the parent's approver, one request at a time with the parent's own, saying which
    subagent asks (the TUI dialog shows it; headless denies as usual)."""

    def __init__(self, parent: Agent, label: str) -> None:
        self.parent, self.label = parent, label

    async def decide(self, request: ApprovalRequest) -> Decision:
        async with self.parent._approval_lock:
            return await self.parent.approver.decide(dataclasses.replace(request, agent=self.label))


def child_session(parent: Session, call_id: str, model: str, agent: str, task: str) -> Session:
    """A new session folder `<parent>/tasks/<call id>/` (the child's transcript)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", call_id)[:80].lstrip(".") or "call"
    path, n = parent.path / "tasks" / safe, 1
    while path.exists():
        path, n = parent.path / "tasks" / f"{safe}-{n}", n + 1
    path.mkdir(parents=True)
    now = time.time()
    meta = {
        "id": f"{parent.id}/tasks/{path.name}",
        "parent": parent.id,
        "agent": agent,
        "task": task,
        "cwd": parent.meta.get("cwd", ""),
        "model": model,
        "created": now,
        "updated": now,
    }
    session = Session(meta["id"], path, meta, secrets=list(parent.secrets))
    session.save_meta()
    return session


def _policy(parent: Agent, loaded: Any, profile: ModeConfig) -> Any:
    from vibe.build import mode_policy

    pp = parent.settings.policy
    clear = {"plan_file": None} if hasattr(pp, "plan_file") else {}
    if profile.safety == "safe":  # explore: plan-mode permissions on the parent's rules
        return dataclasses.replace(
            pp, read_only=True, auto_edits=False, auto_approve=False, **clear
        )
    policy = mode_policy(loaded, profile, pp.extra_roots)
    return dataclasses.replace(policy, read_only=True, **clear) if pp.read_only else policy


def build_child(parent: Agent, loaded: Any, profile: ModeConfig, call_id: str, task: str) -> Agent:
    """The child agent of `parent` for one task call."""
    from vibe.agent.loop import Agent, AgentSettings
    from vibe.build import build_tools, default_provider, system_prompt

    tools = {n: t for n, t in build_tools(loaded, profile).items() if n not in NO_NESTING}
    model, provider = parent.settings.model, parent.provider
    if profile.active_model and loaded.config.model(profile.active_model) != model:
        model, pconf = loaded.resolve_model(profile.active_model)
        provider = default_provider(model, pconf, loaded)
    policy = _policy(parent, loaded, profile)
    dirs = tuple(policy.extra_roots)
    ps = parent.settings
    settings = AgentSettings(
        model=model,
        policy=policy,
        cwd=ps.cwd,
        limits=Limits(max_turns=profile.max_turns or DEFAULT_MAX_TURNS),
        system_prompt=system_prompt(loaded, ps.cwd, profile, list(tools), dirs),
        max_tool_output_bytes=ps.max_tool_output_bytes,
        on_always=ps.on_always,
        secrets=ps.secrets,
        hooks=ps.hooks.for_child() if ps.hooks else None,
        before_run=ps.before_run,  # its edits go into the parent turn's rewind checkpoint
    )
    session = child_session(parent.session, call_id, model.key, profile.name, task)
    child = Agent(provider, tools, ChildApprover(parent, profile.name), settings, session)
    child.session_rules = list(parent.session_rules)

    def spend(usage: Usage, cost: float) -> None:  # the parent's totals, as it happens
        parent._budget.add_life(usage, cost)  # counted in the parent's run by ChildBudget
        parent._emit(
            UsageUpdated(parent.usage, parent.context_tokens, parent.threshold, parent.cost_usd)
        )

    child._budget = ChildBudget(settings.limits, parent._budget, spend)
    return child


def _action(event: ToolCallStarted) -> str:
    args = event.arguments or {}
    detail = args.get("command") or args.get("path") or args.get("pattern") or ""
    detail = str(detail).replace("\n", " ")
    return f"{event.name} {detail[:100]}".strip()


async def run_child(
    parent: Agent, loaded: Any, profile: ModeConfig, task: str, ctx: ToolContext
) -> ToolResult:
    """Run the subagent to its end; its answer, turns and status are the task's result."""
    child = build_child(parent, loaded, profile, ctx.call_id, task)
    fin: TurnFinished | None = None
    count = 0
    try:
        async for event in child.run(task):
            parent._emit(SubagentEvent(ctx.call_id, profile.name, event))
            if isinstance(event, TurnFinished):
                fin = event
            elif isinstance(event, ToolCallStarted):
                count += 1
                if ctx.on_output is not None:
                    ctx.on_output(f"[{profile.name} · {count} tools] {_action(event)}\n")
    finally:
        child.session.close()
        if child.provider is not parent.provider:
            try:
                await child.provider.aclose()
            except Exception:  # closing must not change the outcome
                log.debug("subagent provider close failed", exc_info=True)
    assert fin is not None  # Agent.run always ends with one TurnFinished
    completed = fin.status == "completed"
    answer = fin.text.strip() or "(the subagent gave no final answer)"
    state = "completed" if completed else f"did not complete: {fin.error or fin.status}"
    footer = f"[{profile.name} subagent: {fin.num_turns} turns, {count} tool calls, {state}]"
    data = {
        "agent": profile.name,
        "turns": fin.num_turns,
        "tool_calls": count,
        "completed": completed,
        "status": fin.status,
        "transcript": str(child.session.path),
    }
    return ToolResult(f"{answer}\n\n{footer}", ok=completed, data=data)
