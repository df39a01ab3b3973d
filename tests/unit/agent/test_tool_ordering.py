"""The calls of one model turn: same-path calls keep the model's order where one writes, bash
is a barrier, read-only calls on different paths overlap; each result is saved as it finishes
and the history keeps call order; bad arguments are tool errors; how a final answer ended."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from tests.unit.agent._harness import call, drive, finished, make_agent, results
from tools._text import atomic_write, finish_write
from tools.base import Tool, ToolContext, ToolResult
from tools.edit import EditTool
from tools.read_file import ReadFileTool
from tools.registry import builtin_tools
from vibe.agent.footprint import (
    BARRIER,
    READ_ANY,
    dependencies,
    footprint,
    unfinished_writes,
)
from vibe.agent.history import CANCELLED, in_call_order, is_valid
from vibe.events import ToolCallFinished
from vibe.messages import Message, ToolCall
from vibe.session import Session


def edit(path: str, old: str, new: str) -> dict:
    return call("edit", {"path": path, "old_string": old, "new_string": new})


async def test_two_edits_of_one_file_both_survive(tmp_path):
    for round_ in range(5):  # unordered, one of the two changes was lost most of the time
        work = tmp_path / f"r{round_}"
        (work / "work").mkdir(parents=True)
        (work / "work" / "f.txt").write_text("alpha\nbeta\ngamma\n")
        script = [
            {"tool_calls": [edit("f.txt", "alpha", "ALPHA"), edit("f.txt", "gamma", "GAMMA")]},
            {"text": "done"},
        ]
        events = await drive(make_agent(work, script))
        assert [r.status for r in results(events)] == ["ok", "ok"]
        assert (work / "work" / "f.txt").read_text() == "ALPHA\nbeta\nGAMMA\n"


async def test_write_then_edit_then_bash_then_read_run_in_order(tmp_path):
    script = [
        {
            "tool_calls": [
                call("write_file", {"path": "f.txt", "content": "one\n"}),
                edit("f.txt", "one", "two"),
                call("bash", {"command": "sed -i s/two/three/ f.txt && cat f.txt"}),
                call("read_file", {"path": "f.txt"}),
            ]
        },
        {"text": "done"},
    ]
    agent = make_agent(tmp_path, script)
    events = await drive(agent)
    res = results(events)
    assert [r.status for r in res] == ["ok"] * 4
    assert "three" in res[2].result and "three" in res[3].result
    assert (tmp_path / "work" / "f.txt").read_text() == "three\n"


async def test_bash_is_a_barrier_both_ways(tmp_path):
    script = [
        {
            "tool_calls": [
                call("write_file", {"path": "a.txt", "content": "a\n"}),
                call("bash", {"command": "sleep 0.3; cat a.txt; echo b > b.txt"}),
                call("read_file", {"path": "b.txt"}),
            ]
        },
        {"text": "done"},
    ]
    events = await drive(make_agent(tmp_path, script))
    write, bash, read = results(events)
    assert (
        write.status == "ok"
        and bash.result.startswith("a\n")
        and read.status == "ok"
        and "b" in read.result
    )
    finishes = [e.call_id for e in events if isinstance(e, ToolCallFinished)]
    assert finishes == ["call0000x", "call0001x", "call0002x"]


class SlowArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str


class SlowRead(Tool):
    """A read-only tool that takes 0.4 s (the loop under test only sees its footprint)."""

    name: ClassVar[str] = "slow_read"
    description: ClassVar[str] = "read slowly"
    Args: ClassVar[type[BaseModel]] = SlowArgs
    access: ClassVar[str] = "read"
    log: ClassVar[list[str]] = []

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        self.log.append(f"start {args.path}")
        await asyncio.sleep(0.4)
        self.log.append(f"end {args.path}")
        return ToolResult(f"read {args.path}")


async def test_reads_of_different_paths_overlap_and_a_write_waits(tmp_path):
    script = [
        {
            "tool_calls": [
                call("slow_read", {"path": "a.txt"}),
                call("slow_read", {"path": "b.txt"}),
                call("write_file", {"path": "a.txt", "content": "new\n"}),
            ]
        },
        {"text": "done"},
    ]
    agent = make_agent(tmp_path, script)
    agent.tools["slow_read"] = SlowRead()
    SlowRead.log.clear()
    started = time.monotonic()
    events = await drive(agent)
    assert time.monotonic() - started < 0.75, "the two reads did not overlap"
    assert SlowRead.log[:2] == ["start a.txt", "start b.txt"]
    finishes = [e.call_id for e in events if isinstance(e, ToolCallFinished)]
    assert finishes.index("call0002x") > finishes.index("call0000x")  # the write waited


def test_footprints_and_dependencies(tmp_path):
    tools = builtin_tools()
    (tmp_path / "real.txt").write_text("x")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")

    def fp(name, args):
        return footprint(tools.get(name), args, tmp_path)

    prints = [
        fp("read_file", {"path": "real.txt"}),  # 0
        fp("read_file", {"path": "other.txt"}),  # 1
        fp("edit", {"path": "link.txt"}),  # 2: the same file through a symlink
        fp("grep", {"pattern": "x"}),  # 3: the whole folder
        fp("write_file", {"path": "sub/new.txt"}),  # 4: inside the folder grep reads
        fp("mcp_tool", {"path": "z"}),  # 5: unknown: a barrier
        fp("read_file", {"path": "z"}),  # 6
        fp("read_file", None),  # 7: invalid JSON, never runs
        fp("read_file", {"path": "a\0b"}),  # 8: a NUL byte: kept in order to be safe
    ]
    assert prints[5] == BARRIER and prints[8] == BARRIER
    deps = dependencies(prints)
    assert deps[1] == [] and deps[2] == [0] and deps[3] == [2]
    assert deps[4] == [3] and deps[5] == [0, 1, 2, 3, 4] and deps[6] == [5]
    assert deps[7] == [5] and deps[8] == [0, 1, 2, 3, 4, 5, 6, 7]


async def test_each_result_is_saved_as_it_finishes_and_loaded_in_call_order(tmp_path):
    script = [
        {
            "tool_calls": [
                call("bash", {"command": "sleep 0.2; echo slow"}),
                call("read_file", {"path": "f.txt"}),
            ]
        },
        {"text": "done"},
    ]
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "f.txt").write_text("hello\n")
    agent = make_agent(tmp_path, script)
    saved_at_finish = []

    async def consume():
        async for event in agent.run("go"):
            if isinstance(event, ToolCallFinished):
                # Saved before the event: a kill right now keeps this result.
                on_disk = Session.load(agent.session.path).messages
                saved_at_finish.append(event.call_id in {m.tool_call_id for m in on_disk})

    await consume()
    assert saved_at_finish == [True, True]
    tool_ids = [m.tool_call_id for m in agent.messages if m.role == "tool"]
    assert tool_ids == ["call0000x", "call0001x"]
    assert [m.tool_call_id for m in agent.session.messages if m.role == "tool"] == tool_ids


def test_results_saved_out_of_order_load_in_call_order(tmp_path):
    session = Session.create(tmp_path, tmp_path)
    calls = [ToolCall("a", "bash", "{}"), ToolCall("b", "read_file", "{}")]
    session.append(Message("user", "go"))
    session.append(Message("assistant", "", tool_calls=calls))
    session.append(Message("tool", "B", tool_call_id="b", name="read_file"))
    session.append(Message("tool", "A", tool_call_id="a", name="bash"))
    session.append(Message("assistant", "done"))
    session.close()
    loaded = Session.load(session.path).messages
    assert [m.content for m in loaded] == ["go", "", "A", "B", "done"]
    assert in_call_order(loaded) == loaded


async def test_a_killed_turn_resumes_with_the_finished_results(tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "f.txt").write_text("old\n")
    first = make_agent(
        tmp_path,
        [{"tool_calls": [edit("f.txt", "old", "new"), call("bash", {"command": "sleep 30"})]}],
    )
    task = asyncio.create_task(drive(first))
    for _ in range(200):
        if (tmp_path / "work" / "f.txt").read_text() == "new\n":
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    # A kill -9: nothing after this point reaches the log.
    log = (first.session.path / "messages.jsonl").read_text()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    (first.session.path / "messages.jsonl").write_text(log)
    agent = make_agent(tmp_path, [{"text": "ok"}], session=Session.load(first.session.path))
    await drive(agent, "continue")
    sent = agent.provider.requests[0].messages
    assert [m.role for m in sent] == ["system", "user", "assistant", "tool", "tool", "user"]
    assert sent[3].content.startswith("Edited f.txt") and sent[4].content == CANCELLED
    assert is_valid(sent)


async def test_resume_removes_temp_files_of_unfinished_writes(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    target = work / "big.txt"
    target.write_text("original\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = work / f".big.txt.{dead.pid}.0badc0de.vibe.tmp"
    stale.write_bytes(b"x" * 1000)
    alive = work / f".big.txt.{os.getppid()}.0badc0de.vibe.tmp"  # a live writer's: kept
    alive.write_bytes(b"y")
    session = Session.create(tmp_path / "home", work)
    args = json.dumps({"path": "big.txt", "content": "new"})
    session.append(Message("user", "go"))
    session.append(Message("assistant", "", tool_calls=[ToolCall("w", "write_file", args)]))
    session.close()
    saved = Session.load(session.path)
    assert unfinished_writes(saved.messages, builtin_tools(), work) == [target]
    make_agent(tmp_path, [], session=saved)
    assert not stale.exists() and alive.exists()
    assert target.read_text() == "original\n"


def test_atomic_write_names_its_temp_file_by_pid_and_cleans_stale_ones(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".f.txt.{dead.pid}.00000001.vibe.tmp"
    stale.write_text("half")
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write(target, b"data")
    assert target.read_bytes() == b"data" and not stale.exists()
    assert seen[0].startswith(f".f.txt.{os.getpid()}.") and seen[0].endswith(".vibe.tmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


async def test_deeply_nested_arguments_and_nul_paths_are_tool_errors(tmp_path):
    nested = '{"path": ' + "[" * 100_000 + "]" * 100_000 + "}"
    script = [
        {
            "tool_calls": [
                call("read_file", nested),
                call("read_file", {"path": "a\0b"}),
                call("write_file", {"path": "x\0y", "content": "z"}),
                call("grep", {"pattern": "x", "path": "\0"}),
                call("edit", {"path": "f\0", "old_string": "a", "new_string": "b"}),
            ]
        },
        {"text": "recovered"},
    ]
    events = await drive(make_agent(tmp_path, script))
    fin = finished(events)
    assert (fin.status, fin.exit_code, fin.text) == ("completed", 0, "recovered")
    res = results(events)
    assert res[0].status == "error" and "nested too deeply" in res[0].result
    # The permission check may refuse a NUL path before the tool does; the model is told.
    assert all(r.status in ("error", "denied") and "NUL" in r.result.upper() for r in res[1:])
    assert all("internal error" not in r.result for r in res)


async def test_an_answer_cut_at_the_token_limit_is_a_limit(tmp_path):
    agent = make_agent(tmp_path, [{"text": "The first half of", "finish_reason": "length"}])
    fin = finished(await drive(agent))
    assert (fin.status, fin.exit_code) == ("limit", 3)
    assert fin.error == (
        "the model's answer was cut off at its output token limit (finish_reason=length)"
    )
    assert fin.text == "The first half of"


async def test_empty_reasoning_only_and_choiceless_answers_warn(tmp_path):
    cases = [
        ({"text": ""}, "empty answer"),
        ({"reasoning": "hmm, let me think"}, "only reasoning"),
        ({"text": "", "finish_reason": "no_choices"}, "no choices"),
        ({"text": "hidden", "finish_reason": "content_filter"}, "finish_reason=content_filter"),
    ]
    for n, (turn, expected) in enumerate(cases):
        fin = finished(await drive(make_agent(tmp_path / str(n), [turn])))
        assert (fin.status, fin.exit_code) == ("completed", 0)
        assert len(fin.warnings) == 1 and expected in fin.warnings[0], fin.warnings
    plain = finished(await drive(make_agent(tmp_path / "plain", [{"text": "hi"}])))
    assert plain.warnings == ()


async def test_tool_output_is_redacted_everywhere(tmp_path):
    secret = "sk-test-SECRET-0123456789"
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "leak.txt").write_text(f"key = {secret}\n")
    script = [
        {
            "tool_calls": [
                call("read_file", {"path": "leak.txt"}),
                call("bash", {"command": "cat leak.txt"}),
            ]
        },
        {"text": "done"},
    ]
    agent = make_agent(tmp_path, script, secrets=[secret])
    events = await drive(agent)
    assert all(secret not in r.result for r in results(events))
    sent = agent.provider.requests[1].messages
    assert all(secret not in m.content for m in sent)
    assert secret not in (agent.session.path / "messages.jsonl").read_text()
    assert "key = " in sent[-1].content  # the rest of the output is kept


async def test_read_file_pages_under_the_loop_cap(tmp_path):
    (tmp_path / "work").mkdir()
    lines = "".join(f"{i:05d} " + "x" * 43 + "\n" for i in range(1, 2001))
    (tmp_path / "work" / "big.txt").write_text(lines)
    script = [{"tool_calls": [call("read_file", {"path": "big.txt"})]}, {"text": "ok"}]
    agent = make_agent(tmp_path, script, max_tool_output_bytes=4000)
    (res,) = results(await drive(agent))
    assert len(res.result.encode()) <= 4000 and "omitted" not in res.result
    last = res.result.splitlines()[-2]
    n = int(last.split("\t")[0])
    assert res.result.splitlines()[-1].endswith(f"offset={n + 1} to read more]")


class SlowWrite(Tool):
    """A write that takes 0.5 s in a thread, run the way write_file and edit run theirs."""

    name: ClassVar[str] = "slow_write"
    description: ClassVar[str] = "write slowly"
    Args: ClassVar[type[BaseModel]] = SlowArgs
    access: ClassVar[str] = "write"

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        def write() -> ToolResult:
            time.sleep(0.5)
            (ctx.cwd / args.path).write_text("written")
            return ToolResult(f"Wrote {args.path}")

        return await finish_write(write)


async def test_an_interrupt_during_a_write_reports_what_happened(tmp_path):
    script = [{"tool_calls": [call("slow_write", {"path": "w.txt"})]}, {"text": "never"}]
    agent = make_agent(tmp_path, script)
    agent.tools["slow_write"] = SlowWrite()
    events = []

    async def consume():
        async for event in agent.run("go"):
            events.append(event)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.25)
    agent.interrupt()
    await asyncio.wait_for(task, 5)
    assert finished(events).status == "interrupted"
    (res,) = results(events)
    assert (res.status, res.result) == ("ok", "Wrote w.txt")  # not "cancelled": it happened
    assert (tmp_path / "work" / "w.txt").read_text() == "written"
    assert [m.content for m in agent.messages if m.role == "tool"] == ["Wrote w.txt"]


def test_tools_declare_their_access():
    tools = builtin_tools()
    assert ReadFileTool.access == "read" and EditTool.access == "write"
    assert tools["bash"].access == "any" and tools["grep"].access == "read"


def test_a_task_call_whose_subagent_can_write_is_a_barrier(tmp_path):
    """Read-only children (explore, or a profile of read-only tools) run concurrently; a custom
    subagent with write tools, bash not under plan-mode rules, or every tool is a barrier, so
    two such children, or a child and a sibling edit, never write one file at once."""
    from types import SimpleNamespace

    from vibe.config.schema import ModeConfig
    from vibe.subagents.tool import TaskTool

    def sub(name: str, tools: tuple[str, ...] | None, safety: str = "neutral") -> ModeConfig:
        return ModeConfig(name=name, safety=safety, enabled_tools=tools, agent_type="subagent")

    loaded = SimpleNamespace(
        subagents=[
            sub("reader", ("read_file", "grep")),
            sub("writer", ("read_file", "edit")),
            sub("shell", ("bash",)),
            sub("everything", None),
            sub("safe_shell", ("bash", "edit"), safety="safe"),
        ]
    )
    task = TaskTool(loaded)
    fp = lambda args: footprint(task, args, tmp_path)  # noqa: E731
    for agent in ("explore", "reader", "safe_shell"):  # read-only: may read anything
        assert fp({"task": "x", "agent": agent}) == READ_ANY
    assert fp({"task": "x", "agent": "no-such-agent"}).paths == ()  # rejected, runs nothing
    assert fp({"task": "x"}) == READ_ANY  # explore by default
    for agent in ("writer", "shell", "everything"):
        assert fp({"task": "x", "agent": agent}) == BARRIER, agent
    edit_fp = footprint(EditTool(), {"path": "f.txt"}, tmp_path)
    writer = fp({"task": "x", "agent": "writer"})
    assert dependencies([writer, writer, edit_fp]) == [[], [0], [0, 1]]
    explore = fp({"task": "x"})
    assert dependencies([explore, explore, edit_fp]) == [[], [], [0, 1]]
    assert dependencies([edit_fp, explore]) == [[], [0]]  # never reads a half-done edit
    # ... not even outside the working folder (an --add-dir folder, a symlink's target)
    outside = footprint(EditTool(), {"path": str(tmp_path.parent / "elsewhere.txt")}, tmp_path)
    assert dependencies([outside, explore, explore]) == [[], [0], [0]]


def test_exit_plan_mode_is_a_barrier(tmp_path):
    """The user reviews the plan file only after a sibling write to it finished."""
    from tools.exit_plan_mode import ExitPlanModeTool

    write = footprint(EditTool(), {"path": "plan.md"}, tmp_path)
    done = footprint(ExitPlanModeTool(lambda: None), {}, tmp_path)  # type: ignore[arg-type]
    assert done == BARRIER and dependencies([write, done]) == [[], [0]]
