"""No lost or hidden data, end to end: real `vibe run` processes against the loopback fake
server, with marker files in a temp folder. Same-file calls keep their order; read_file pages
show every line once; a kill -9 keeps finished results; two runs never share a session; a
backtracking grep obeys --time-limit; truncated or empty answers are reported."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from tests.fakes import vibe_proc
from tests.fakes.server import RecordedRequest
from tests.fakes.vibe_proc import events, fake_config, vibe_env, vibe_popen, write_config


@pytest.fixture
def env(home, fake_llm):
    after = "[tools.bash]\ndefault_timeout = 60\n"
    write_config(home, fake_config(fake_llm.url, key_env="FAKE_KEY", after=after))
    return vibe_env(home, FAKE_KEY="k", PYTHONUNBUFFERED="1")


@pytest.fixture
def work(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


def vibe(args, env, cwd, timeout=60):
    return vibe_proc.vibe(env, cwd, "run", *args, timeout=timeout)


def popen(args, env, cwd):
    return vibe_popen(env, cwd, "run", *args)


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


def edit(path, old, new):
    return call("edit", path=path, old_string=old, new_string=new)


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


# ---- 1. calls on one file keep the model's order ---------------------------------------------


def test_same_file_changes_in_one_turn_all_survive(env, work, fake_llm):
    (work / "two_edits.txt").write_text("alpha\nbeta\ngamma\n")
    (work / "beside_sed.txt").write_text("red green\n")
    fake_llm.script(
        {
            "tool_calls": [
                edit("two_edits.txt", "alpha", "ALPHA"),
                edit("two_edits.txt", "gamma", "GAMMA"),
                call("write_file", path="written.txt", content="first draft\n"),
                edit("written.txt", "first", "final"),
                edit("beside_sed.txt", "red", "RED"),
                call("bash", command="sed -i s/green/GREEN/ beside_sed.txt"),
                edit("beside_sed.txt", "GREEN", "GREEN!"),
            ]
        },
        {"text": "all done"},
    )
    proc = vibe(["change things", "--auto-approve", "--output", "stream-json"], env, work)
    assert proc.returncode == 0, proc.stderr
    statuses = [e["status"] for e in events(proc.stdout) if e["type"] == "tool_result"]
    assert statuses == ["ok"] * 7
    assert (work / "two_edits.txt").read_text() == "ALPHA\nbeta\nGAMMA\n"
    assert (work / "written.txt").read_text() == "final draft\n"
    assert (work / "beside_sed.txt").read_text() == "RED GREEN!\n"
    sent = [m for m in fake_llm.requests[1].messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in sent] == [f"call{i:04d}x" for i in range(7)]


# ---- 2. read_file pages hide nothing ---------------------------------------------------------


def test_paging_with_the_trailer_shows_the_model_every_line_once(env, work, fake_llm):
    body = "".join(f"L{i:05d} " + "q" * 42 + "\n" for i in range(1, 2001))  # 50 bytes a line
    (work / "big.txt").write_text(body)

    def model(request: RecordedRequest) -> dict:
        last = request.messages[-1]
        if last["role"] == "user":
            return {"tool_calls": [call("read_file", path="big.txt")]}
        match = re.search(r"offset=(\d+) to read more\]$", last["content"])
        if match is None:
            return {"text": "read it all"}
        return {"tool_calls": [call("read_file", path="big.txt", offset=int(match.group(1)))]}

    fake_llm.script(model)
    proc = vibe(["read big.txt", "--output", "json"], env, work)
    assert proc.returncode == 0, proc.stderr
    assert events(proc.stdout)[0]["result"] == "read it all"
    pages = [m["content"] for m in fake_llm.requests[-1].messages if m["role"] == "tool"]
    assert len(pages) >= 4, "a page is at most the 30,000-byte cap"
    assert all(len(p.encode()) <= 30_000 and "omitted" not in p for p in pages)
    seen = [int(n) for p in pages for n in re.findall(r"^\s*\d+\tL(\d{5}) ", p, re.M)]
    assert seen == list(range(1, 2001))


# ---- 3. a kill keeps finished results --------------------------------------------------------


def test_kill_9_after_an_edit_keeps_its_real_result(env, work, fake_llm):
    (work / "f.txt").write_text("before\n")
    fake_llm.script(
        {"tool_calls": [edit("f.txt", "before", "after"), call("bash", command="sleep 30")]},
        {"text": "I see the edit happened"},
    )
    proc = popen(["edit then wait", "--auto-approve", "--output", "stream-json"], env, work)
    try:
        for line in proc.stdout:
            event = json.loads(line)
            if event["type"] == "tool_result" and event["name"] == "edit":
                break
        time.sleep(0.3)  # the bash call is running now
    finally:
        proc.kill()  # SIGKILL
        proc.wait(5)
    assert (work / "f.txt").read_text() == "after\n"
    again = vibe(["what happened?", "--continue"], env, work)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "I see the edit happened"
    sent = fake_llm.requests[-1].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "tool", "user"]
    assert sent[3]["content"].startswith("Edited f.txt") and "did not run" not in sent[3]["content"]
    assert "did not run" in sent[4]["content"]  # the killed bash call


def test_resume_cleans_the_temp_file_a_killed_write_left(env, work, fake_llm):
    fake_llm.script(
        {"tool_calls": [call("bash", command="sleep 30")]},
        {"text": "cleaned"},
    )
    proc = popen(["go", "--auto-approve", "--output", "stream-json"], env, work)
    session_id = json.loads(proc.stdout.readline())["session_id"]
    wait_for(lambda: len(fake_llm.requests) == 1)
    time.sleep(0.3)
    proc.kill()
    proc.wait(5)
    # What a write_file killed mid-write leaves: its call in the log, a temp file beside it.
    log = Path(env["VIBE_HOME"]) / "sessions" / session_id / "messages.jsonl"
    lines = log.read_text().splitlines()
    message = json.loads(lines[1])
    message["tool_calls"].append(
        {"id": "w1", "name": "write_file", "arguments": '{"path": "out.bin", "content": "x"}'}
    )
    log.write_text("\n".join([lines[0], json.dumps(message)]) + "\n")
    temp = work / f".out.bin.{proc.pid}.1234abcd.vibe.tmp"
    temp.write_bytes(b"\0" * 100_000)
    again = vibe(["go on", "--continue"], env, work)
    assert again.returncode == 0, again.stderr
    assert not temp.exists() and not (work / "out.bin").exists()


# ---- 4. one process per session --------------------------------------------------------------


def by_prompt(request: RecordedRequest) -> dict:
    """Prompt "hold" runs a 3 s command; any other prompt is answered with its own name."""
    msgs = request.messages
    prompt = [m for m in msgs if m["role"] == "user"][-1]["content"]
    if msgs[-1]["role"] == "tool":
        return {"text": f"done {prompt}"}
    if prompt == "hold":
        return {"tool_calls": [call("bash", command="sleep 3; echo held")]}
    return {"text": f"answer {prompt}"}


def test_two_runs_never_interleave_in_one_session(env, work, fake_llm):
    fake_llm.script(by_prompt)
    first = vibe(["start", "--output", "json"], env, work)
    sid = events(first.stdout)[0]["session_id"]
    holder = popen(["hold", "--continue", "--auto-approve", "--output", "stream-json"], env, work)
    assert json.loads(holder.stdout.readline())["session_id"] == sid
    wait_for(lambda: any(r.messages[-1]["content"] == "hold" for r in fake_llm.requests))
    waiter = popen(["after", "--continue", "--wait", "--output", "json"], env, work)
    other = vibe(["meanwhile", "--continue", "--output", "json"], env, work)
    assert other.returncode == 0, other.stderr
    assert f"session {sid} is in use by another vibe process" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
    assert events(other.stdout)[0]["session_id"] != sid  # a new session
    resume = vibe(["x", "--resume", sid], env, work)
    assert resume.returncode == 1 and "in use" in resume.stderr and "--wait" in resume.stderr
    assert "Traceback" not in resume.stderr
    _, err = holder.communicate(timeout=30)
    assert holder.returncode == 0, err
    w_out, w_err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, w_err
    assert events(w_out)[0]["session_id"] == sid and events(w_out)[0]["result"] == "answer after"
    log = Path(env["VIBE_HOME"]) / "sessions" / sid / "messages.jsonl"
    users = [json.loads(x)["content"] for x in log.read_text().splitlines()]
    users = [u for u in users if u in ("start", "hold", "after", "meanwhile")]
    assert users == ["start", "hold", "after"]


def test_continue_without_a_session_is_an_error(env, work, fake_llm):
    proc = vibe(["hi", "-c"], env, work)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: no session to continue in {work.resolve()}; run without --continue"
    )
    assert fake_llm.requests == []


# ---- also found ------------------------------------------------------------------------------


def test_a_backtracking_grep_obeys_the_time_limit(env, work, fake_llm):
    (work / "a.txt").write_text("a" * 64 + "!\n")
    fake_llm.script({"tool_calls": [call("grep", pattern="(a+)+$")]}, {"text": "never"})
    started = time.monotonic()
    proc = vibe(["search", "--time-limit", "3", "--output", "json"], env, work, timeout=30)
    assert time.monotonic() - started < 15
    assert proc.returncode == 3, proc.stderr
    assert events(proc.stdout)[0]["status"] == "limit"


def test_bad_arguments_are_tool_errors(env, work, fake_llm):
    nested = '{"path": ' + "[" * 50_000 + "]" * 50_000 + "}"
    fake_llm.script(
        {
            "tool_calls": [
                {"name": "read_file", "arguments": nested},
                call("write_file", path="x\0y", content="z"),
            ]
        },
        {"text": "fine"},
    )
    proc = vibe(["go", "--auto-approve", "--output", "stream-json"], env, work)
    assert proc.returncode == 0, proc.stderr
    res = [e for e in events(proc.stdout) if e["type"] == "tool_result"]
    assert res[0]["status"] == "error" and "nested too deeply" in res[0]["result"]
    # The permission check may refuse the NUL path first; either way the model is told.
    assert res[1]["status"] in ("error", "denied") and "NUL" in res[1]["result"].upper()
    assert list(work.iterdir()) == []
    assert "internal error" not in proc.stdout + proc.stderr


def test_truncated_and_empty_answers_are_reported(env, work, fake_llm):
    fake_llm.script({"text": "The answer is", "finish_reason": "length"})
    cut = vibe(["q"], env, work)
    assert cut.returncode == 3 and cut.stdout.strip() == "The answer is"
    assert "cut off at its output token limit (finish_reason=length)" in cut.stderr
    fake_llm.script({"text": ""})
    empty = vibe(["q"], env, work)
    assert empty.returncode == 0
    assert empty.stderr.strip() == "warning: the model returned an empty answer"
    fake_llm.script({"reasoning": "thinking only"})
    as_json = vibe(["q", "--output", "json"], env, work)
    result = events(as_json.stdout)[0]
    assert result["status"] == "completed" and len(result["warnings"]) == 1
    fake_llm.script({"text": "fine"})
    stream = vibe(["q", "--output", "stream-json"], env, work)
    assert events(stream.stdout)[-1]["warnings"] == []


def test_sigterm_still_records_cancelled_results_in_order(env, work, fake_llm):
    fake_llm.script(
        {"tool_calls": [call("read_file", path="nope"), call("bash", command="sleep 30")]}
    )
    proc = popen(["go", "--auto-approve", "--output", "stream-json"], env, work)
    sid = json.loads(proc.stdout.readline())["session_id"]
    wait_for(lambda: len(fake_llm.requests) == 1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    log = Path(env["VIBE_HOME"]) / "sessions" / sid / "messages.jsonl"
    tools = [json.loads(x) for x in log.read_text().splitlines() if '"role": "tool"' in x]
    assert [t["tool_call_id"] for t in tools] == ["call0000x", "call0001x"]
    assert "file not found" in tools[0]["content"] and "did not run" in tools[1]["content"]
