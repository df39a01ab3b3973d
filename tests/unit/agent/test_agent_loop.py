"""The agent loop with the scripted provider and the real tools on temp dirs: events, ordered
calls with serialised approvals, bad arguments, denials, interrupts, limits, provider errors."""

from __future__ import annotations

import asyncio
import json
import os
import time

from tests.unit.agent._harness import RecordingApprover, call, drive, finished, make_agent, results
from tools.permissions import PermissionPolicy
from vibe.agent.approval import HeadlessApprover
from vibe.agent.budget import Limits
from vibe.agent.history import is_valid
from vibe.events import (
    AssistantMessage,
    ErrorEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallStarted,
    UsageUpdated,
)
from vibe.session import Session


async def test_text_answer_streams_and_is_saved(tmp_path):
    agent = make_agent(
        tmp_path,
        [
            {
                "text": "The answer is 42.",
                "reasoning": "think",
                "usage": {"prompt_tokens": 100, "completion_tokens": 10},
            }
        ],
    )
    events = await drive(agent, "question?")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The answer is 42."
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "think"
    assert any(isinstance(e, AssistantMessage) for e in events)
    usage = next(e for e in events if isinstance(e, UsageUpdated))
    assert usage.context_tokens == 110 and usage.threshold == agent.threshold
    fin = finished(events)
    assert (fin.status, fin.exit_code, fin.text, fin.num_turns) == (
        "completed",
        0,
        "The answer is 42.",
        1,
    )
    assert fin.cost_usd == (100 * 1.0 + 10 * 2.0) / 1e6
    saved = Session.load(agent.session.path).messages
    assert [m.role for m in saved] == ["user", "assistant"]
    assert saved[1].reasoning == "think"


async def test_calls_with_approvals_one_at_a_time(tmp_path):
    # bash calls are barriers (they run in the model's order, see test_tool_ordering.py);
    # read-only calls on different paths still run concurrently (tested there).
    approver = RecordingApprover("once")
    script = [
        {
            "tool_calls": [
                call("bash", {"command": "sleep 0.6; touch one; echo one"}),
                call("bash", {"command": "sleep 0.6; touch two; echo two"}),
                call("write_file", {"path": "out.txt", "content": "hello\n"}),
            ]
        },
        {"text": "done"},
    ]
    agent = make_agent(tmp_path, script, approver=approver)
    started = time.monotonic()
    events = await drive(agent)
    elapsed = time.monotonic() - started
    assert len(approver.requests) == 3 and approver.max_open == 1
    assert elapsed >= 1.2, f"two bash calls overlapped ({elapsed:.2f}s)"
    res = results(events)
    assert sorted(r.status for r in res) == ["ok", "ok", "ok"]
    tool_msgs = [m for m in agent.messages if m.role == "tool"]
    assert [m.tool_call_id for m in tool_msgs] == ["call0000x", "call0001x", "call0002x"]
    assert "one" in tool_msgs[0].content and "two" in tool_msgs[1].content
    assert (tmp_path / "work" / "out.txt").read_text() == "hello\n"
    assert is_valid(agent.messages)


async def test_invalid_json_is_an_explicit_error_and_nothing_runs(tmp_path):
    script = [
        {"tool_calls": [call("write_file", '{"path": "x.txt", "content": "a')]},
        {"text": "sorry"},
    ]
    agent = make_agent(tmp_path, script)
    events = await drive(agent)
    started = next(e for e in events if isinstance(e, ToolCallStarted))
    assert started.arguments is None and started.raw_arguments.startswith('{"path"')
    (res,) = results(events)
    assert res.status == "error" and "invalid JSON" in res.result
    assert not (tmp_path / "work" / "x.txt").exists()
    # The model is told: the next request carries the error as the call's result.
    sent = agent.provider.requests[1].messages
    assert sent[-1].role == "tool" and "invalid JSON" in sent[-1].content


async def test_unknown_tool_and_missing_parameter(tmp_path):
    script = [
        {"tool_calls": [call("launch_rockets", {}), call("read_file", {"offset": 3})]},
        {"text": "ok"},
    ]
    events = await drive(make_agent(tmp_path, script))
    unknown, missing = results(events)
    assert unknown.status == "error" and "unknown tool 'launch_rockets'" in unknown.result
    assert "read_file" in unknown.result  # lists what exists
    assert missing.status == "error" and "missing required parameter 'path'" in missing.result


async def test_headless_denial_is_reported_and_file_untouched(tmp_path):
    target = tmp_path / "work" / "keep.txt"
    (tmp_path / "work").mkdir()
    target.write_text("original\n")
    script = [
        {
            "tool_calls": [
                call(
                    "edit", {"path": "keep.txt", "old_string": "original", "new_string": "changed"}
                )
            ]
        },
        {"text": "I could not edit."},
    ]
    agent = make_agent(tmp_path, script, approver=HeadlessApprover(auto_approve=False))
    events = await drive(agent)
    (res,) = results(events)
    assert res.status == "denied" and "--auto-approve" in res.result
    assert target.read_text() == "original\n"
    assert finished(events).status == "completed"


async def test_denylist_wins_over_auto_approve(tmp_path):
    from tools.permissions import ToolPolicy, default_policy

    tools = {**default_policy(), "bash": ToolPolicy("ask", denylist=("rm *",))}
    policy = PermissionPolicy(tools=tools, auto_approve=True)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "f").write_text("x")
    script = [{"tool_calls": [call("bash", {"command": "rm f"})]}, {"text": "ok"}]
    events = await drive(make_agent(tmp_path, script, policy=policy))
    assert results(events)[0].status == "denied"
    assert (tmp_path / "work" / "f").exists()


async def test_session_approval_is_not_asked_twice(tmp_path):
    approver = RecordingApprover("session", pattern="touch *")
    saved: list[tuple[str, str]] = []
    script = [
        {"tool_calls": [call("bash", {"command": "touch a"})]},
        {"tool_calls": [call("bash", {"command": "touch b"})]},
        {"text": "done"},
    ]
    agent = make_agent(tmp_path, script, approver=approver, on_always=lambda *a: saved.append(a))
    await drive(agent)
    assert len(approver.requests) == 1
    assert agent.session_rules == [("bash", "touch *")]
    assert (tmp_path / "work" / "b").exists() and saved == []


async def test_always_approval_calls_on_always(tmp_path):
    approver = RecordingApprover("always", pattern="touch *")
    saved: list[tuple[str, str]] = []
    script = [{"tool_calls": [call("bash", {"command": "touch a"})]}, {"text": "done"}]
    agent = make_agent(tmp_path, script, approver=approver, on_always=lambda *a: saved.append(a))
    await drive(agent)
    assert saved == [("bash", "touch *")]


async def test_interrupt_kills_tools_and_records_cancelled_results(tmp_path):
    script = [
        {
            "tool_calls": [
                call("bash", {"command": "echo $$ > pid; sleep 30"}),
                call("bash", {"command": "sleep 30"}),
            ]
        },
        {"text": "never"},
    ]
    agent = make_agent(tmp_path, script)
    pid_file = tmp_path / "work" / "pid"
    events = []

    async def consume():
        async for event in agent.run("go"):
            events.append(event)

    task = asyncio.create_task(consume())
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.02)
    agent.interrupt()
    await asyncio.wait_for(task, 5)
    fin = finished(events)
    assert (fin.status, fin.exit_code) == ("interrupted", 130)
    assert [r.status for r in results(events)] == ["cancelled", "cancelled"]
    tools = [m for m in agent.messages if m.role == "tool"]
    assert len(tools) == 2 and is_valid(agent.messages)
    pid = int(pid_file.read_text())
    for _ in range(100):  # the shell and its sleep were killed
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("bash process still alive after interrupt")
    on_disk = Session.load(agent.session.path).messages
    assert [m.role for m in on_disk] == ["user", "assistant", "tool", "tool"]


async def test_interrupt_during_stream_keeps_partial_text(tmp_path):
    script = [{"text": "a b c d e f g h i j k l m n o p", "slow": 0.05}]
    agent = make_agent(tmp_path, script)
    agent.provider.chunk_size = 2
    events = []
    async for event in agent.run("go"):
        events.append(event)
        if isinstance(event, TextDelta) and len(events) == 3:
            agent.interrupt()
    fin = finished(events)
    assert fin.status == "interrupted" and fin.text.startswith("a ")
    assert agent.messages[-1].role == "assistant" and not agent.messages[-1].tool_calls


async def test_max_turns_limit(tmp_path):
    loop_turn = {"tool_calls": [call("read_file", {"path": "."})]}
    agent = make_agent(tmp_path, [loop_turn] * 5, limits=Limits(max_turns=2))
    events = await drive(agent)
    fin = finished(events)
    assert (fin.status, fin.exit_code, fin.num_turns) == ("limit", 3, 2)
    assert "turn limit" in fin.error
    assert any(isinstance(e, ErrorEvent) for e in events)
    assert is_valid(agent.messages)


async def test_token_and_price_limits(tmp_path):
    turn = {
        "tool_calls": [call("todo", {"todos": []})],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
    }
    fin = finished(
        await drive(make_agent(tmp_path / "a", [turn] * 5, limits=Limits(max_tokens=2500)))
    )
    assert fin.status == "limit" and fin.num_turns == 3 and "token limit" in fin.error
    # 1000 * $1/M + 100 * $2/M = $0.0012 per call
    fin = finished(
        await drive(make_agent(tmp_path / "b", [turn] * 5, limits=Limits(max_price=0.002)))
    )
    assert fin.status == "limit" and fin.num_turns == 2 and "price limit" in fin.error


async def test_time_limit_stops_a_running_tool(tmp_path):
    script = [{"tool_calls": [call("bash", {"command": "sleep 30"})]}, {"text": "never"}]
    agent = make_agent(tmp_path, script, limits=Limits(time_limit=0.5))
    started = time.monotonic()
    events = await drive(agent)
    assert time.monotonic() - started < 3
    fin = finished(events)
    assert (fin.status, fin.exit_code) == ("limit", 3) and "time limit" in fin.error
    assert results(events)[0].status == "cancelled"
    assert is_valid(agent.messages)


async def test_provider_failure_is_exit_2(tmp_path):
    agent = make_agent(tmp_path, [{"status": 401}])
    events = await drive(agent)
    fin = finished(events)
    assert (fin.status, fin.exit_code) == ("error", 2) and "401" in fin.error


async def test_retryable_fault_is_retried_like_http(tmp_path):
    agent = make_agent(tmp_path, [{"status": 429}, {"text": "hi"}])
    assert finished(await drive(agent)).text == "hi"


async def test_resumed_session_with_orphan_call_is_repaired(tmp_path):
    first = make_agent(tmp_path, [{"tool_calls": [call("bash", {"command": "sleep 30"})]}])
    task = asyncio.create_task(drive(first))
    await asyncio.sleep(0.3)
    # Simulate kill -9: the tool never finished, so the log ends with the assistant call.
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    path = first.session.path
    lines = (path / "messages.jsonl").read_text().splitlines()
    (path / "messages.jsonl").write_text("\n".join(lines[:2]) + "\n")
    resumed = Session.load(path)
    agent = make_agent(tmp_path, [{"text": "resumed"}], session=resumed)
    await drive(agent, "continue")
    sent = agent.provider.requests[0].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert is_valid(sent)


async def test_tool_output_is_capped(tmp_path):
    script = [
        {"tool_calls": [call("bash", {"command": "yes x | head -c 200000"})]},
        {"text": "ok"},
    ]
    agent = make_agent(tmp_path, script, max_tool_output_bytes=5000)
    events = await drive(agent)
    (res,) = results(events)
    assert len(res.result.encode()) < 6000
    assert len(json.dumps([m.to_dict() for m in agent.provider.requests[1].messages])) < 20000
