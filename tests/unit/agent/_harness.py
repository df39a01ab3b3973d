"""Builds an Agent on a temp dir with the scripted provider and the real tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.permissions import PermissionPolicy
from tools.registry import builtin_tools
from vibe.agent.approval import ApprovalRequest, Approver, Decision, HeadlessApprover
from vibe.agent.budget import Limits
from vibe.agent.loop import Agent, AgentSettings
from vibe.config import ModelConfig
from vibe.events import Event, ToolCallFinished, TurnFinished
from vibe.providers.scripted import ScriptedProvider
from vibe.session import Session

MODEL = ModelConfig(name="test-model", provider="test", input_price=1.0, output_price=2.0)


class RecordingApprover:
    """Answers with `choice`, remembering requests and how many were open at once."""

    def __init__(self, choice: str = "once", pattern: str = "") -> None:
        self.choice, self.pattern = choice, pattern
        self.requests: list[ApprovalRequest] = []
        self.open = 0
        self.max_open = 0

    async def decide(self, request: ApprovalRequest) -> Decision:
        import asyncio

        self.requests.append(request)
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        await asyncio.sleep(0.02)
        self.open -= 1
        return Decision(self.choice, feedback="not now", pattern=self.pattern)  # type: ignore[arg-type]


def make_agent(
    tmp_path: Path,
    script: list[dict[str, Any]],
    *,
    approver: Approver | None = None,
    policy: PermissionPolicy | None = None,
    limits: Limits | None = None,
    session: Session | None = None,
    **settings: Any,
) -> Agent:
    work = tmp_path / "work"
    work.mkdir(parents=True, exist_ok=True)
    session = session or Session.create(tmp_path / "home", work, model="test-model")
    agent_settings = AgentSettings(
        model=MODEL,
        policy=policy or PermissionPolicy(),
        cwd=work,
        limits=limits or Limits(),
        system_prompt="You are a test agent.",
        **settings,
    )
    return Agent(
        ScriptedProvider(script),
        builtin_tools(),
        approver or HeadlessApprover(auto_approve=True),
        agent_settings,
        session,
    )


async def drive(agent: Agent, prompt: str = "go") -> list[Event]:
    events = [event async for event in agent.run(prompt)]
    finished = [e for e in events if isinstance(e, TurnFinished)]
    assert len(finished) == 1 and events[-1] is finished[0], "exactly one TurnFinished, last"
    return events


def finished(events: list[Event]) -> TurnFinished:
    last = events[-1]
    assert isinstance(last, TurnFinished)
    return last


def results(events: list[Event]) -> list[ToolCallFinished]:
    return [e for e in events if isinstance(e, ToolCallFinished)]


def call(name: str, arguments: Any, id: str | None = None) -> dict[str, Any]:
    spec = {"name": name, "arguments": arguments}
    if id:
        spec["id"] = id
    return spec
