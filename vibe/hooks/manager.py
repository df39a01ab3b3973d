"""What the agent loop calls: `pre_tool` after the permission verdict and before a tool runs,
`post_tool` after it ran, `post_agent` when a turn would end. Every hook run is reported as a
HookEvent (allow, deny, rewrite or warning). Hooks apply in every mode, --auto-approve too."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from vibe.events import Event, HookEvent
from vibe.hooks.config import HookConfig
from vibe.hooks.runner import HookReply, run_hook

log = logging.getLogger(__name__)
Emit = Callable[[Event], None]
MAX_POST_AGENT_RETRIES = 3  # post_agent denials per turn before the turn ends anyway


@dataclass
class PreToolOutcome:
    """Deny (with the reason for the model), or run with `tool_input` (None: unchanged)."""

    deny: str | None = None
    tool_input: dict[str, Any] | None = None
    context: list[str] = field(default_factory=list)


@dataclass
class Hooks:
    """The hooks of one agent. `session_id`/`transcript_path` are read at each run."""

    hooks: Sequence[HookConfig]
    cwd: Path
    env: Mapping[str, str]
    session_id: Callable[[], str] = lambda: ""
    transcript_path: Callable[[], str] = lambda: ""
    # call id -> (the input it ran with, pre_tool context), from before_tool to after_tool
    ran: dict[str, tuple[dict[str, Any], list[str]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.hooks)

    def for_child(self) -> Hooks:
        """The same tool hooks for a subagent; post_agent belongs to the main agent's turn."""
        keep = [h for h in self.hooks if h.type != "post_agent"]
        return replace(self, hooks=keep, ran={})

    def _matching(self, kind: str, tool_name: str | None = None) -> list[HookConfig]:
        return [
            h
            for h in self.hooks
            if h.type == kind and (tool_name is None or fnmatchcase(tool_name, h.match))
        ]

    def _payload(self, kind: str, **extra: Any) -> dict[str, Any]:
        return {
            "hook_event_name": kind,
            "session_id": self.session_id(),
            "transcript_path": self.transcript_path(),
            "cwd": str(self.cwd),
            **extra,
        }

    async def _run(
        self, hook: HookConfig, payload: dict[str, Any], emit: Emit, call_id: str | None
    ) -> HookReply:
        reply = await run_hook(hook, payload, self.cwd, self.env)
        tool = payload.get("tool_name")
        if reply.failure:
            decision = "deny" if hook.strict else "warning"
            message = f"hook {hook.name} {reply.failure}"
            message += " (strict: denied)" if hook.strict else " (ignored)"
            log.warning("%s", message)
        elif reply.decision == "deny":
            decision, message = "deny", reply.deny_reason
        elif reply.tool_input is not None:
            decision, message = "rewrite", "rewrote the tool input"
        else:
            decision, message = "allow", ""
        if reply.system_message:
            message = f"{message}\n{reply.system_message}".strip()
        emit(HookEvent(hook.name, hook.type, decision, message, tool, call_id))
        return reply

    async def pre_tool(
        self, call_id: str, tool_name: str, tool_input: dict[str, Any], emit: Emit
    ) -> PreToolOutcome:
        """Run the matching pre_tool hooks in order: the first deny wins; a rewrite is seen by
        the next hook and returned."""
        outcome = PreToolOutcome()
        current = tool_input
        for hook in self._matching("pre_tool", tool_name):
            payload = self._payload(
                "pre_tool", tool_name=tool_name, tool_call_id=call_id, tool_input=current
            )
            reply = await self._run(hook, payload, emit, call_id)
            if reply.denied:
                outcome.deny = f"Denied by the {hook.name} hook: {reply.deny_reason}"
                return outcome
            if reply.tool_input is not None:
                current = outcome.tool_input = reply.tool_input
            if reply.additional_context:
                outcome.context.append(reply.additional_context)
        return outcome

    async def post_tool(
        self,
        call_id: str,
        tool_name: str,
        tool_input: dict[str, Any] | None,
        status: str,
        text: str,
        duration_ms: int,
        emit: Emit,
    ) -> list[str]:
        """Run the matching post_tool hooks; what they add to the result (context, denials)."""
        extra: list[str] = []
        for hook in self._matching("post_tool", tool_name):
            ok = status == "ok"
            payload = self._payload(
                "post_tool",
                tool_name=tool_name,
                tool_call_id=call_id,
                tool_input=tool_input or {},
                tool_status=status,
                tool_output_text=text if ok else "",
                tool_error=None if ok else text,
                duration_ms=duration_ms,
            )
            reply = await self._run(hook, payload, emit, call_id)
            if reply.additional_context:
                extra.append(reply.additional_context)
            if reply.denied:
                extra.append(f"[the {hook.name} hook objected: {reply.deny_reason}]")
        return extra

    async def post_agent(self, emit: Emit) -> str | None:
        """Run the post_agent hooks when a turn would end; a denial's reason (to send back to
        the model as a new user message), or None to end the turn."""
        for hook in self._matching("post_agent"):
            reply = await self._run(hook, self._payload("post_agent"), emit, None)
            if reply.denied:
                return reply.deny_reason
        return None


def hooks_for(configs: Sequence[HookConfig], agent: Any, hidden_env: Sequence[str]) -> Hooks:
    """The Hooks of `agent`: they run in its working folder with the environment the tools
    get (credentials withheld: the secret-looking names and `hidden_env`)."""
    from tools._proc import shell_env

    return Hooks(
        list(configs),
        agent.settings.cwd,
        shell_env(frozenset(hidden_env)),
        session_id=lambda: agent.session.id,
        transcript_path=lambda: str(agent.session.log_file),
    )
