"""The real `vibe run` process against the loopback fake server: fix a failing test in a git
repo, the same without --auto-approve, signals, kill -9 durability, hostile commands, huge
output, exit codes, record/replay, and API keys never written anywhere."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import vibe_proc
from tests.fakes.vibe_proc import events, fake_config, vibe_env, vibe_popen, write_config
from vibe.session import Session

KEY = "sk-fake-SECRET-7f3a9c"
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider test_calc.py"


@pytest.fixture
def env(home, fake_llm):
    after = "input_price = 1.0\noutput_price = 3.0\n[tools.bash]\ndefault_timeout = 60\n"
    write_config(home, fake_config(fake_llm.url, key_env="FAKE_KEY", after=after))
    return vibe_env(home, FAKE_KEY=KEY, PYTHONUNBUFFERED="1")


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (repo / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "calc")
    return repo


def vibe(args, env, cwd, timeout=60, stdin=None):
    return vibe_proc.vibe(env, cwd, "run", *args, timeout=timeout, stdin=stdin)


def popen(args, env, cwd):
    return vibe_popen(env, cwd, "run", *args)


def bash(command, **extra):
    return {"name": "bash", "arguments": {"command": command, **extra}}


FIX_SCRIPT = [
    {"text": "Running the tests first.", "tool_calls": [bash(PYTEST)]},
    {"tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}}]},
    {
        "tool_calls": [
            {
                "name": "edit",
                "arguments": {
                    "path": "calc.py",
                    "old_string": "return a - b",
                    "new_string": "return a + b",
                },
            }
        ]
    },
    {"tool_calls": [bash(PYTEST)]},
    {"text": "Fixed: add() subtracted. The test passes now."},
]


def test_fix_the_failing_test(env, repo, fake_llm):
    fake_llm.script(FIX_SCRIPT)
    proc = vibe(
        ["make the failing test pass", "--auto-approve", "--output", "stream-json"], env, repo
    )
    assert proc.returncode == 0, proc.stderr
    evs = events(proc.stdout)
    assert evs[0]["type"] == "init" and evs[0]["cwd"] == str(repo) and "edit" in evs[0]["tools"]
    res = [e for e in evs if e["type"] == "tool_result"]
    assert [r["name"] for r in res] == ["bash", "read_file", "edit", "bash"]
    assert "1 failed" in res[0]["result"] and "return a - b" in res[1]["result"]
    assert res[2]["status"] == "ok" and "+    return a + b" in res[2]["diff"]
    assert "1 passed" in res[3]["result"] and res[3]["status"] == "ok"
    final = evs[-1]
    assert final["type"] == "result" and final["status"] == "completed"
    assert final["num_turns"] == 5 and final["result"].startswith("Fixed")
    assert final["cost_usd"] > 0 and final["usage"]["total_tokens"] > 0
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    # The model saw each result: the 2nd request ends with the failing test run.
    assert "1 failed" in fake_llm.requests[1].messages[-1]["content"]
    session = Session.load(Path(env["VIBE_HOME"]) / "sessions" / final["session_id"])
    assert [m.role for m in session.messages].count("tool") == 4


def test_without_auto_approve_edits_are_denied(env, repo, fake_llm):
    fake_llm.script(FIX_SCRIPT)
    proc = vibe(["make the failing test pass", "--output", "json"], env, repo)
    assert proc.returncode == 0, proc.stderr
    (result,) = events(proc.stdout)  # exactly one JSON object
    denied = [d["tool"] for d in result["permission_denials"]]
    assert denied == ["bash", "edit", "bash"]
    assert "--auto-approve" in result["permission_denials"][1]["reason"]
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
    tool_msgs = [m for m in fake_llm.requests[3].messages if m["role"] == "tool"]
    assert "Denied" in tool_msgs[-1]["content"]  # the model is told
    fake_llm.script(FIX_SCRIPT)
    text = vibe(["make the failing test pass"], env, repo)
    assert "denied: edit" in text.stderr and text.stdout.startswith("Fixed")


def test_prompt_from_stdin_and_invalid_json_arguments(env, repo, fake_llm):
    fake_llm.script(
        {"tool_calls": [{"name": "write_file", "arguments": '{"path": "x.txt", '}]},
        {"text": "ok"},
    )
    proc = vibe(["--output", "stream-json", "--auto-approve"], env, repo, stdin="from stdin\n")
    assert proc.returncode == 0, proc.stderr
    (res,) = [e for e in events(proc.stdout) if e["type"] == "tool_result"]
    assert res["status"] == "error" and "invalid JSON" in res["result"]
    assert not (repo / "x.txt").exists()
    assert fake_llm.requests[0].messages[1]["content"] == "from stdin\n"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_a_slow_stream(env, repo, fake_llm, sig):
    fake_llm.script({"text": "word " * 200, "slow": 0.05}, {"text": "resumed"})
    proc = popen(["write a long answer", "--output", "stream-json"], env, repo)
    init = json.loads(proc.stdout.readline())
    deadline = time.monotonic() + 10
    while not fake_llm.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    final = events(out)[-1]
    assert final["type"] == "result" and final["status"] == "interrupted"
    assert final["exit_code"] == 130 and final["session_id"] == init["session_id"]
    assert "Traceback" not in err
    session = Session.load(Path(env["VIBE_HOME"]) / "sessions" / init["session_id"])
    assert session.messages[0].content == "write a long answer"
    assert session.messages[1].content.startswith("word word")  # what was streamed is kept
    if sig == signal.SIGTERM:
        return
    again = vibe(["go on", "--resume", init["session_id"][:17]], env, repo)
    assert again.returncode == 0 and again.stdout.strip() == "resumed", again.stderr
    roles = [m["role"] for m in fake_llm.requests[-1].messages]
    assert roles == ["system", "user", "assistant", "user"]


def test_kill_9_loses_at_most_the_message_in_flight(env, repo, fake_llm):
    fake_llm.script({"tool_calls": [bash("sleep 5")]}, {"text": "after the crash"})
    proc = popen(["sleep", "--auto-approve", "--output", "stream-json"], env, repo)
    for line in proc.stdout:
        if json.loads(line)["type"] == "tool_call":
            break
    time.sleep(0.2)
    proc.kill()
    proc.wait(5)
    (path,) = (Path(env["VIBE_HOME"]) / "sessions").iterdir()
    session = Session.load(path)
    assert [m.role for m in session.messages] == ["user", "assistant"]
    assert session.messages[1].tool_calls[0].name == "bash"
    again = vibe(["what happened?", "--continue"], env, repo)
    assert again.returncode == 0 and again.stdout.strip() == "after the crash", again.stderr
    sent = fake_llm.requests[-1].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    assert "cancelled" in sent[3]["content"]


def test_stdin_readers_and_endless_commands_do_not_hang(env, repo, fake_llm):
    fake_llm.script(
        {
            "tool_calls": [
                bash("cat"),
                bash("read line; echo got:$line"),
                bash("sleep 100", timeout=1),
            ]
        },
        {"text": "done"},
    )
    started = time.monotonic()
    proc = vibe(["try", "--auto-approve", "--output", "stream-json"], env, repo, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 20
    cat, read, sleep = [e for e in events(proc.stdout) if e["type"] == "tool_result"]
    assert "exit code: 0" in cat["result"] and "got:" in read["result"]
    assert "timed out" in sleep["result"]


def test_five_megabytes_of_output_are_capped(env, repo, fake_llm):
    fake_llm.script({"tool_calls": [bash("yes abcdefghij | head -c 5000000")]}, {"text": "ok"})
    proc = vibe(["flood", "--auto-approve", "--output", "stream-json"], env, repo)
    assert proc.returncode == 0, proc.stderr
    (res,) = [e for e in events(proc.stdout) if e["type"] == "tool_result"]
    assert len(res["result"]) < 40_000 and "omitted" in res["result"]
    assert len(json.dumps(fake_llm.requests[1].body)) < 100_000
    (path,) = (Path(env["VIBE_HOME"]) / "sessions").iterdir()
    assert (path / "messages.jsonl").stat().st_size < 100_000


def test_exit_codes(env, repo, fake_llm):
    bad = vibe(["hi", "--model", "nope"], env, repo)
    assert bad.returncode == 1 and "nope" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    fake_llm.script({"status": 401, "body": {"message": "Unauthorized"}})
    api = vibe(["hi", "--output", "json"], env, repo)
    assert api.returncode == 2 and events(api.stdout)[0]["status"] == "error"
    fake_llm.script(*[{"tool_calls": [{"name": "todo", "arguments": {"todos": []}}]}] * 3)
    limit = vibe(["loop", "--max-turns", "2", "--output", "json"], env, repo)
    assert limit.returncode == 3
    result = events(limit.stdout)[0]
    assert result["status"] == "limit" and result["num_turns"] == 2
    usage = vibe(["hi", "--max-turns", "0"], env, repo)
    assert usage.returncode == 1 and "--max-turns" in usage.stderr
    empty = vibe([], env, repo, stdin="")
    assert empty.returncode == 1 and "prompt" in empty.stderr


def test_record_replay_and_keys_never_written(env, repo, fake_llm, tmp_path):
    fake_llm.script(
        {"tool_calls": [bash("echo key=$FAKE_KEY")]},
        {"text": f"Your key is {KEY}."},
    )
    rec = tmp_path / "rec.jsonl"
    args = ["show the key", "--auto-approve", "--output", "stream-json", "--record", str(rec)]
    proc = vibe(args, env, repo)
    assert proc.returncode == 0, proc.stderr
    assert fake_llm.requests[0].headers["authorization"] == f"Bearer {KEY}"  # the key was used
    written = [proc.stdout, proc.stderr, rec.read_text()]
    written += [p.read_text() for p in Path(env["VIBE_HOME"]).rglob("*") if p.is_file()]
    assert not [w for w in written if KEY in w]
    assert events(proc.stdout)[-1]["result"] == "Your key is ***."

    # Replay with no server at all: the provider points at a closed port.
    fake_llm.stop()
    replay = vibe(
        ["show the key", "--auto-approve", "--output", "json", "--replay", str(rec)], env, repo
    )
    assert replay.returncode == 0, replay.stderr
    assert events(replay.stdout)[0]["result"] == "Your key is ***."
    diverged = vibe(["something else", "--replay", str(rec)], env, repo)
    assert diverged.returncode == 2 and "replay diverged" in diverged.stderr
