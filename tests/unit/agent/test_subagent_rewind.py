"""A writer subagent's edits belong to the parent's rewind checkpoint: the user message that
started the `task` call can restore the files the child changed, as it restores the parent's
own edits (vibe.runtime.Runtime.begin_turn, vibe.subagents.runner)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from vibe.agent.approval import HeadlessApprover
from vibe.agent.turn import run_turn
from vibe.config import load_config
from vibe.events import SubagentEvent, ToolCallFinished, TurnFinished
from vibe.providers.scripted import ScriptedProvider
from vibe.runtime import build_runtime

SCRIBE = (
    'agent_type = "subagent"\ndescription = "Writes files"\nsafety = "neutral"\n'
    'enabled_tools = ["write_file", "edit"]\nmax_turns = 4\n'
)


def write(path: str, content: str) -> dict:
    return {"name": "write_file", "arguments": {"path": path, "content": content}}


def test_rewind_restores_the_files_a_writer_subagent_changed(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    (home / "agents").mkdir(parents=True)
    (home / "agents" / "scribe.toml").write_text(SCRIBE)
    work.mkdir()
    (work / "a.txt").write_text("original\n")
    script = [
        {"tool_calls": [write("a.txt", "parent\n")]},  # the parent edits a.txt first
        {"tool_calls": [{"name": "task", "arguments": {"task": "notes", "agent": "scribe"}}]},
        {  # the child: rewrites a.txt and creates a new file
            "tool_calls": [
                {
                    "name": "edit",
                    "arguments": {"path": "a.txt", "old_string": "parent", "new_string": "child"},
                },
                write("notes/n.md", "child note\n"),
            ]
        },
        {"text": "child done"},
        {"text": "parent done"},
    ]
    provider = ScriptedProvider(script)
    rt = build_runtime(
        load_config(work, home=home),
        work,
        HeadlessApprover(auto_approve=True),
        provider_factory=lambda model, pconf, loaded: provider,
    )

    async def turn(text: str) -> list:
        rt.begin_turn(text)
        return [event async for event in run_turn(rt, text)]

    events = asyncio.run(turn("delegate the notes"))
    assert isinstance(events[-1], TurnFinished) and events[-1].status == "completed"
    child_results = [
        e.event
        for e in events
        if isinstance(e, SubagentEvent) and isinstance(e.event, ToolCallFinished)
    ]
    assert [r.status for r in child_results] == ["ok", "ok"]
    assert (work / "a.txt").read_text() == "child\n"
    assert (work / "notes" / "n.md").read_text() == "child note\n"

    assert rt.checkpoints is not None
    [index] = rt.checkpoints.turns()
    assert rt.session.messages[index].content == "delegate the notes"
    assert {p.path.name for p in rt.checkpoints.changed_since(index)} == {"a.txt", "n.md"}
    restored, problems = rt.checkpoints.restore(index)
    assert problems == [] and len(restored) == 2
    assert (work / "a.txt").read_text() == "original\n"  # before the parent's and the child's edit
    assert not (work / "notes" / "n.md").exists()
    asyncio.run(rt.aclose())
    rt.session.close()
