"""Subagents end to end: the real `vibe run` process against the loopback fake server, whose
script plays both the parent's and the children's conversations: a delegated exploration whose
answer the parent uses, two concurrent children, a child asking for approval (headless
denial), cancellation, usage roll-up and --max-price across children."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import vibe_proc
from tests.fakes.vibe_proc import events, fake_config, vibe_env, write_config
from vibe.session import Session

EXPLORE_MARK = "You are `explore`"


@pytest.fixture
def env(home, fake_llm):
    after = "input_price = 1000.0\noutput_price = 1000.0\n"
    write_config(home, fake_config(fake_llm.url, key_env="FAKE_KEY", after=after))
    return vibe_env(home, FAKE_KEY="sk-x", PYTHONUNBUFFERED="1")


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "auth.py").write_text("def login(user):\n    return check_token(user)\n")
    (repo / "db.py").write_text("def connect():\n    return 'postgres://local'\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    return repo


def vibe(args, env, cwd, timeout=60):
    return vibe_proc.vibe(env, cwd, "run", *args, "--output", "stream-json", timeout=timeout)


def task(text: str, id: str, agent: str | None = None) -> dict:
    args = {"task": text} if agent is None else {"task": text, "agent": agent}
    return {"name": "task", "arguments": args, "id": id}


USAGE = {"prompt_tokens": 100, "completion_tokens": 10}


def test_delegated_exploration_answer_is_used(env, repo, fake_llm):
    fake_llm.script(
        {"tool_calls": [task("Where is login defined? Quote it.", "call_t1")], "usage": USAGE},
        {"tool_calls": [{"name": "grep", "arguments": {"pattern": "def login"}}], "usage": USAGE},
        {"tool_calls": [{"name": "read_file", "arguments": {"path": "auth.py"}}], "usage": USAGE},
        {"text": "login is in auth.py line 1; it calls check_token.", "usage": USAGE},
        {"text": "The explorer says: login lives in auth.py.", "usage": USAGE},
    )
    proc = vibe(["where is login?"], env, repo)
    assert proc.returncode == 0, proc.stderr
    evs = events(proc.stdout)
    assert "task" in evs[0]["tools"]
    top = [e for e in evs if "parent_tool_call_id" not in e]
    child = [e for e in evs if e.get("parent_tool_call_id") == "call_t1"]
    (res,) = [e for e in top if e["type"] == "tool_result"]
    assert res["name"] == "task" and res["status"] == "ok"
    assert res["result"].startswith("login is in auth.py line 1")
    assert "3 turns" in res["result"] and "completed" in res["result"]
    assert [e["name"] for e in child if e["type"] == "tool_result"] == ["grep", "read_file"]
    assert all(e["subagent"] == "explore" for e in child)
    # The child ran in its own conversation: its own system prompt, the task as first message.
    first_child = fake_llm.requests[1].messages
    assert first_child[0]["content"].startswith(EXPLORE_MARK)
    assert first_child[1] == {"role": "user", "content": "Where is login defined? Quote it."}
    names = {t["function"]["name"] for t in fake_llm.requests[1].body["tools"]}
    assert names == {"read_file", "grep", "bash"}
    # The parent saw the child's answer as the task result, not the child's transcript.
    parent_last = fake_llm.requests[4].messages
    assert parent_last[-1]["role"] == "tool" and "check_token" in parent_last[-1]["content"]
    assert not any(m.get("name") == "grep" for m in parent_last)
    final = evs[-1]
    assert final["result"] == "The explorer says: login lives in auth.py."
    # Usage rolls up: 5 model calls of 110 tokens; num_turns counts the parent's.
    assert final["usage"]["total_tokens"] == 550 and final["num_turns"] == 2
    assert final["cost_usd"] == pytest.approx(0.55)
    # The child's transcript is saved under the parent session's folder.
    home = Path(env["VIBE_HOME"])
    folder = home / "sessions" / final["session_id"] / "tasks" / "call_t1"
    saved = Session.load(folder)
    assert [m.role for m in saved.messages][:2] == ["user", "assistant"]
    assert saved.messages[-1].content.startswith("login is in auth.py")
    parent = Session.load(home / "sessions" / final["session_id"])
    assert parent.meta["cost_usd"] == pytest.approx(0.55)


def child_task(request) -> str | None:
    """The task text when `request` is a child's, else None."""
    msgs = request.messages
    if msgs and msgs[0]["content"].startswith(EXPLORE_MARK):
        return msgs[1]["content"]
    return None


def test_two_children_run_concurrently(env, repo, fake_llm):
    order: list[tuple[str, int]] = []

    def respond(request):
        msgs = request.messages
        which = child_task(request)
        if which is None:
            if msgs[-1]["role"] == "user":
                return {"tool_calls": [task("read auth.py", "c_a"), task("read db.py", "c_b")]}
            results = [m["content"] for m in msgs if m["role"] == "tool"]
            return {"text": "both: " + " | ".join(r.split("\n")[0] for r in results)}
        step = sum(1 for m in msgs if m["role"] == "assistant")
        order.append((which, step))
        if step == 0:
            path = which.split()[-1]
            call = {"name": "read_file", "arguments": {"path": path}, "id": f"r_{path}"}
            return {"tool_calls": [call], "delay": 0.5}
        return {"text": f"{which.split()[-1]} read"}

    fake_llm.script(respond)
    started = time.monotonic()
    proc = vibe(["read both"], env, repo)
    assert proc.returncode == 0, proc.stderr
    assert sorted(order[:2]) == [("read auth.py", 0), ("read db.py", 0)]  # both began first
    evs = events(proc.stdout)
    assert evs[-1]["result"] == "both: auth.py read | db.py read"
    results = [e for e in evs if e["type"] == "tool_result" and "parent_tool_call_id" not in e]
    # Results are emitted as each child finishes (either order); the history the parent's
    # model saw keeps call order, which the final answer above shows.
    assert sorted(r["id"] for r in results) == ["c_a", "c_b"]
    assert time.monotonic() - started < 30


def test_child_approval_goes_through_the_parent_approver(env, repo, fake_llm):
    (repo / ".env").write_text("TOKEN=abc\n")
    script = [
        {"tool_calls": [task("read the .env file", "c_env")]},
        {"tool_calls": [{"name": "read_file", "arguments": {"path": ".env"}, "id": "r1"}]},
        {"tool_calls": [{"name": "bash", "arguments": {"command": "touch made"}, "id": "b1"}]},
        {"text": "could not read it"},
        {"text": "the explorer could not read .env"},
    ]
    fake_llm.script(script)
    proc = vibe(["read .env"], env, repo)
    assert proc.returncode == 0, proc.stderr
    evs = events(proc.stdout)
    child = {e["id"]: e for e in evs if e["type"] == "tool_result" and e.get("subagent")}
    assert child["r1"]["status"] == "denied" and "--auto-approve" in child["r1"]["result"]
    assert child["b1"]["status"] == "denied" and "plan mode" in child["b1"]["result"]
    assert not (repo / "made").exists()  # explore never writes, whatever is approved
    assert [d["id"] for d in evs[-1]["permission_denials"]] == ["r1", "b1"]
    # With --auto-approve the same approver allows the read; the write stays denied.
    fake_llm.script(script)
    evs = events(vibe(["read .env", "--auto-approve"], env, repo).stdout)
    child = {e["id"]: e for e in evs if e["type"] == "tool_result" and e.get("subagent")}
    assert child["r1"]["status"] == "ok" and "TOKEN" in child["r1"]["result"]
    assert child["b1"]["status"] == "denied" and not (repo / "made").exists()


def test_custom_subagent_from_agents_toml(env, repo, fake_llm):
    agents = Path(env["VIBE_HOME"]) / "agents"
    agents.mkdir()
    (agents / "scribe.toml").write_text(
        'agent_type = "subagent"\ndescription = "Writes notes"\nsafety = "neutral"\n'
        'enabled_tools = ["write_file"]\nsystem_prompt = "You are scribe."\nmax_turns = 2\n'
    )
    fake_llm.script(
        {"tool_calls": [task("write notes.md", "c_s", agent="scribe")]},
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "n.md", "content": "x"}}]},
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "n.md", "content": "y"}}]},
        {"text": "the scribe ran out of turns"},
    )
    proc = vibe(["take notes", "--auto-approve"], env, repo)
    assert proc.returncode == 0, proc.stderr
    evs = events(proc.stdout)
    assert "scribe" in json.dumps(fake_llm.requests[0].body["tools"])  # listed for the model
    assert fake_llm.requests[1].messages[0]["content"].startswith("You are scribe.")
    assert {t["function"]["name"] for t in fake_llm.requests[1].body["tools"]} == {"write_file"}
    assert (repo / "n.md").read_text() == "y"
    (res,) = [e for e in evs if e["type"] == "tool_result" and e["id"] == "c_s"]
    assert res["status"] == "error" and "did not complete" in res["result"]
    assert "turn limit reached (2" in res["result"]
    # A subagent is not a mode; an unknown subagent is an error the model can fix.
    assert "unknown agent" in vibe(["x", "--agent", "scribe"], env, repo).stderr
    fake_llm.script({"tool_calls": [task("x", "c_u", agent="nobody")]}, {"text": "ok"})
    evs = events(vibe(["x"], env, repo).stdout)
    (res,) = [e for e in evs if e["type"] == "tool_result"]
    assert res["status"] == "error" and "unknown subagent 'nobody'" in res["result"]


def test_max_price_holds_across_children(env, repo, fake_llm):
    fake_llm.script(
        {"tool_calls": [task("grep a lot", "c_p")], "usage": USAGE},
        *[
            {"tool_calls": [{"name": "grep", "arguments": {"pattern": f"x{i}"}}], "usage": USAGE}
            for i in range(5)
        ],
    )
    proc = vibe(["spend", "--max-price", "0.25"], env, repo)
    assert proc.returncode == 3, proc.stderr
    final = events(proc.stdout)[-1]
    assert final["status"] == "limit" and "price limit" in final["error"]
    assert len(fake_llm.requests) == 3 and final["cost_usd"] == pytest.approx(0.33)


def test_sigint_cancels_children_and_each_call_gets_one_result(env, repo, fake_llm):
    def respond(request):
        if child_task(request) is None:
            return {"tool_calls": [task("slow one", "c_1"), task("slow two", "c_2")]}
        return {"text": "late", "delay": 20}

    fake_llm.script(respond)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vibe", "run", "go", "--output", "stream-json"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while len(fake_llm.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake_llm.requests) == 3
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    evs = events(out)
    results = [e for e in evs if e["type"] == "tool_result" and "parent_tool_call_id" not in e]
    assert sorted((r["id"], r["status"]) for r in results) == [
        ("c_1", "cancelled"),
        ("c_2", "cancelled"),
    ]
    assert evs[-1]["type"] == "result" and evs[-1]["status"] == "interrupted"
    home = Path(env["VIBE_HOME"])
    parent = Session.load(home / "sessions" / evs[-1]["session_id"])
    assert [m.tool_call_id for m in parent.messages if m.role == "tool"] == ["c_1", "c_2"]
    for cid in ("c_1", "c_2"):
        child = Session.load(home / "sessions" / evs[-1]["session_id"] / "tasks" / cid)
        assert child.messages[0].content.startswith("slow")
