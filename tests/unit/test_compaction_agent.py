"""Compaction inside the Agent (scripted provider, real tools, real session store): /compact on
demand, resuming a compacted session, no compaction loops, and context accounting events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.permissions import PermissionPolicy
from tools.registry import builtin_tools
from vibe.agent import continuation
from vibe.agent.approval import HeadlessApprover
from vibe.agent.loop import Agent, AgentSettings
from vibe.config import ModelConfig
from vibe.events import Compacted, Event, TurnFinished, UsageUpdated
from vibe.providers.scripted import ScriptedProvider
from vibe.session import Session

SYSTEM = "You are a test agent."
PROMPT = "List the files. Do not modify anything under vendor/."


def make_agent(
    tmp_path: Path, script: list[dict[str, Any]], session: Session | None = None, **model: Any
) -> Agent:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / "a.txt").write_text("alpha\n")
    session = session or Session.create(tmp_path / "home", work, model="m")
    settings = AgentSettings(
        model=ModelConfig(name="m", provider="p", input_price=1.0, **model),
        policy=PermissionPolicy(),
        cwd=work,
        system_prompt=SYSTEM,
    )
    approver = HeadlessApprover(auto_approve=True)
    return Agent(ScriptedProvider(script), builtin_tools(), approver, settings, session)


async def drive(agent: Agent, prompt: str) -> list[Event]:
    events = [e async for e in agent.run(prompt)]
    assert isinstance(events[-1], TurnFinished)
    return events


READ = {"tool_calls": [{"name": "read_file", "arguments": {"path": "a.txt"}}]}


async def test_compact_on_demand_then_resume_sees_the_compacted_view(tmp_path):
    usage = {"prompt_tokens": 5000, "completion_tokens": 10}
    script = [{**READ, "usage": usage}, {"text": "Only a.txt.", "usage": usage}]
    script += [{"text": "SUMMARY: listed files; a.txt only."}]
    agent = make_agent(tmp_path, script)
    await drive(agent, PROMPT)
    before_cost = agent.cost_usd

    event = await agent.compact("the file list")
    assert isinstance(event, Compacted)
    assert event.summary == "SUMMARY: listed files; a.txt only."
    assert event.tokens_before >= 5010 > event.tokens_after == agent.context_tokens
    summary_request = agent.provider.requests[-1]
    assert summary_request.tools == []
    assert "focus on: the file list" in summary_request.messages[1].content
    assert [m.role for m in agent.messages] == ["system", "user"]
    assert agent.messages[0].content == SYSTEM
    assert PROMPT in agent.messages[1].content and event.summary in agent.messages[1].content
    assert agent.cost_usd > before_cost  # the summary call is paid for

    # The log keeps the whole transcript; a resumed agent sees the compacted view.
    saved = Session.load(agent.session.path).messages
    assert [m.role for m in saved] == ["user", "assistant", "tool", "assistant", "user"]
    assert continuation.is_continuation(saved[-1])
    resumed = make_agent(tmp_path, [{"text": "ok"}], session=Session.load(agent.session.path))
    await drive(resumed, "And now?")
    sent = resumed.provider.requests[0].messages
    assert [m.role for m in sent] == ["system", "user"]  # the new prompt merges into it
    assert sent[1].content.startswith(continuation.HEADER) and "And now?" in sent[1].content


async def test_tiny_threshold_compacts_once_per_model_call_never_in_a_loop(tmp_path):
    script = [
        {"text": "summary one"},
        READ,
        {"text": "summary two"},
        {"text": "done"},
    ]
    agent = make_agent(tmp_path, script, auto_compact_threshold=10)
    events = await drive(agent, PROMPT)
    assert events[-1].status == "completed" and events[-1].text == "done"
    kinds = [bool(r.tools) for r in agent.provider.requests]
    assert kinds == [False, True, False, True]  # summary, call, summary, call
    compactions = [e for e in events if isinstance(e, Compacted)]
    assert [c.summary for c in compactions] == ["summary one", "summary two"]
    # Usage events carry the context size against the threshold.
    updates = [e for e in events if isinstance(e, UsageUpdated)]
    assert updates and all(u.threshold == 10 and u.context_tokens > 0 for u in updates)
    assert "summary two" in agent.provider.requests[3].messages[1].content


async def test_no_compaction_below_threshold(tmp_path):
    agent = make_agent(tmp_path, [READ, {"text": "done"}], auto_compact_threshold=100_000)
    events = await drive(agent, PROMPT)
    assert not [e for e in events if isinstance(e, Compacted)]
    assert all(r.tools for r in agent.provider.requests)
    # Context = last reported usage + estimate of what came after (nothing after the reply).
    last = [e for e in events if isinstance(e, UsageUpdated)][-1]
    assert last.context_tokens == agent.context_tokens > 0
