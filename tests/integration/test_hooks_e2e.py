"""Hooks end to end: the real `vibe run` process against the loopback fake server, with hook
commands from $VIBE_HOME/hooks.toml and a project's .vibe/hooks.toml: deny, rewrite (checked
again by the permission policy), additional context, post_agent retry, timeout (the hook's
process group killed), strict, garbage output, bad files, untrusted projects ignored."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes import vibe_proc
from tests.fakes.vibe_proc import events, fake_config, vibe_env, write_config

KEY = "sk-fake-SECRET-hooks-91"


@pytest.fixture
def home(home, fake_llm):
    write_config(home, fake_config(fake_llm.url, key_env="FAKE_KEY"))
    return home


@pytest.fixture
def env(home):
    return vibe_env(home, FAKE_KEY=KEY, PYTHONUNBUFFERED="1")


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "notes.txt").write_text("hello\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    return repo


def hook_script(tmp_path: Path, name: str, body: str) -> str:
    """A Python hook program; returns the command that runs it."""
    path = tmp_path / f"{name}.py"
    path.write_text("import json, os, sys, time\n" + body)
    return f"{sys.executable} {path}"


def write_hooks(folder: Path, *hooks: dict) -> Path:
    lines = []
    for hook in hooks:
        lines.append("[[hooks]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in hook.items()]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hooks.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def vibe(args, env, cwd, timeout=60):
    return vibe_proc.vibe(env, cwd, "run", *args, "--output", "stream-json", timeout=timeout)


def bash(command: str) -> dict:
    return {"name": "bash", "arguments": {"command": command}}


def tool_results(evs):
    return [e for e in evs if e["type"] == "tool_result"]


def hooks_of(evs):
    return [e for e in evs if e["type"] == "hook"]


def test_pre_tool_deny_sees_the_event_and_blocks_even_with_auto_approve(
    tmp_path, home, env, repo, fake_llm
):
    seen = tmp_path / "seen.json"
    cmd = hook_script(
        tmp_path,
        "deny",
        f"data = sys.stdin.read()\nopen({str(seen)!r}, 'w').write(data)\n"
        "env = {k: v for k, v in os.environ.items() if 'FAKE' in k}\n"
        f"open({str(seen)!r} + '.env', 'w').write(json.dumps(env))\n"
        "print(json.dumps({'decision': 'deny', 'reason': 'no shell on Fridays'}))\n",
    )
    write_hooks(home, {"name": "guard", "type": "before_tool", "match": "ba*", "command": cmd})
    fake_llm.script({"tool_calls": [bash("touch made.txt")]}, {"text": "ok, no shell"})
    proc = vibe(["make a file", "--auto-approve"], env, repo)
    assert proc.returncode == 0, proc.stderr
    evs = events(proc.stdout)
    (res,) = tool_results(evs)
    assert res["status"] == "denied" and "no shell on Fridays" in res["result"]
    assert not (repo / "made.txt").exists()
    (hook,) = hooks_of(evs)
    assert hook["decision"] == "deny" and hook["hook_event_name"] == "pre_tool"
    assert hook["name"] == "guard" and hook["tool_call_id"] == res["id"]
    assert "no shell on Fridays" in fake_llm.requests[1].messages[-1]["content"]
    payload = json.loads(seen.read_text())
    assert payload["hook_event_name"] == "pre_tool" and payload["tool_name"] == "bash"
    assert payload["tool_input"] == {"command": "touch made.txt"}
    assert payload["cwd"] == str(repo) and payload["session_id"] == evs[0]["session_id"]
    assert payload["transcript_path"].endswith("messages.jsonl")
    assert payload["tool_call_id"] == res["id"]
    assert json.loads((tmp_path / "seen.json.env").read_text()) == {}  # no credentials


def test_rewrite_runs_the_new_input_and_rechecks_permission(tmp_path, home, env, repo, fake_llm):
    cmd = hook_script(
        tmp_path,
        "rewrite",
        "event = json.load(sys.stdin)\n"
        "command = event['tool_input']['command'].replace('ORIGINAL', 'REWRITTEN')\n"
        "print(json.dumps({'hook_specific_output': {'tool_input': {'command': command}}}))\n",
    )
    write_hooks(home, {"name": "rw", "type": "pre_tool", "match": "bash", "command": cmd})
    fake_llm.script({"tool_calls": [bash("echo ORIGINAL")]}, {"text": "done"})
    proc = vibe(["echo", "--auto-approve"], env, repo)
    assert proc.returncode == 0, proc.stderr
    evs = events(proc.stdout)
    (res,) = tool_results(evs)
    assert res["status"] == "ok" and "REWRITTEN" in res["result"]
    assert hooks_of(evs)[0]["decision"] == "rewrite"
    # Rewritten from a read-only command into a write: checked again, asked, denied headless.
    cmd = hook_script(
        tmp_path,
        "rewrite2",
        "json.load(sys.stdin)\n"
        "print(json.dumps({'hook_specific_output': {'tool_input': {'command': 'touch x.txt'}}}))\n",
    )
    write_hooks(home, {"name": "rw", "type": "pre_tool", "match": "bash", "command": cmd})
    fake_llm.script({"tool_calls": [bash("ls")]}, {"text": "done"})
    proc = vibe(["list"], env, repo)
    (res,) = tool_results(events(proc.stdout))
    assert res["status"] == "denied" and not (repo / "x.txt").exists()
    # Rewritten into invalid arguments: an error, nothing runs.
    cmd = hook_script(
        tmp_path,
        "rewrite3",
        "print(json.dumps({'hook_specific_output': {'tool_input': {'cmd': 1}}}))\n",
    )
    write_hooks(home, {"name": "rw", "type": "pre_tool", "command": cmd})
    fake_llm.script({"tool_calls": [bash("ls")]}, {"text": "done"})
    (res,) = tool_results(events(vibe(["list", "--auto-approve"], env, repo).stdout))
    assert res["status"] == "error" and "rewrote the call" in res["result"]


def test_post_tool_additional_context_reaches_the_model(tmp_path, home, env, repo, fake_llm):
    seen = tmp_path / "post.json"
    cmd = hook_script(
        tmp_path,
        "post",
        f"open({str(seen)!r}, 'w').write(sys.stdin.read())\n"
        "print(json.dumps({'hook_specific_output': {'additional_context': 'LINT: 0 issues'}}))\n",
    )
    write_hooks(home, {"name": "lint", "type": "after_tool", "match": "read_*", "command": cmd})
    fake_llm.script(
        {"tool_calls": [{"name": "read_file", "arguments": {"path": "notes.txt"}}]},
        {"text": "read it"},
    )
    proc = vibe(["read notes"], env, repo)
    assert proc.returncode == 0, proc.stderr
    (res,) = tool_results(events(proc.stdout))
    assert "hello" in res["result"] and res["result"].rstrip().endswith("LINT: 0 issues")
    assert "LINT: 0 issues" in fake_llm.requests[1].messages[-1]["content"]
    payload = json.loads(seen.read_text())
    assert payload["hook_event_name"] == "post_tool" and payload["tool_status"] == "ok"
    assert "hello" in payload["tool_output_text"] and payload["tool_error"] is None
    assert isinstance(payload["duration_ms"], int)


def test_post_agent_deny_sends_the_agent_back_at_most_three_times(
    tmp_path, home, env, repo, fake_llm
):
    counter = tmp_path / "count"
    cmd = hook_script(
        tmp_path,
        "stop",
        f"p = {str(counter)!r}\n"
        "n = int(open(p).read()) if os.path.exists(p) else 0\n"
        "open(p, 'w').write(str(n + 1))\n"
        "if n == 0:\n"
        "    print(json.dumps({'decision': 'deny', 'reason': 'run the tests first'}))\n",
    )
    write_hooks(home, {"name": "tests-first", "type": "post_agent_turn", "command": cmd})
    fake_llm.script({"text": "done"}, {"text": "tests pass, done"})
    proc = vibe(["work"], env, repo)
    assert proc.returncode == 0, proc.stderr
    evs = events(proc.stdout)
    assert evs[-1]["result"] == "tests pass, done" and evs[-1]["num_turns"] == 2
    last = fake_llm.requests[1].messages[-1]
    assert last["role"] == "user" and "run the tests first" in last["content"]
    # A hook that always denies: three more tries, then the turn ends.
    cmd = hook_script(
        tmp_path, "never", "print(json.dumps({'decision': 'deny', 'reason': 'not yet'}))\n"
    )
    write_hooks(home, {"name": "never", "type": "post_agent", "command": cmd})
    fake_llm.script([{"text": f"answer {i}"} for i in range(6)])
    proc = vibe(["work"], env, repo)
    evs = events(proc.stdout)
    assert proc.returncode == 0 and evs[-1]["num_turns"] == 4
    assert len([h for h in hooks_of(evs) if h["decision"] == "deny"]) == 3


def test_timeout_fails_open_and_kills_the_hook_group(tmp_path, home, env, repo, fake_llm):
    pidfile = tmp_path / "bg.pid"
    write_hooks(
        home,
        {
            "name": "slow",
            "type": "pre_tool",
            "command": f"sleep 30 & echo $! > {pidfile}; wait",
            "timeout": 1,
        },
    )
    fake_llm.script({"tool_calls": [bash("echo ran")]}, {"text": "done"})
    started = time.monotonic()
    proc = vibe(["go", "--auto-approve"], env, repo)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 20
    evs = events(proc.stdout)
    (hook,) = hooks_of(evs)
    assert hook["decision"] == "warning" and "timed out after 1 s" in hook["message"]
    (res,) = tool_results(evs)
    assert res["status"] == "ok" and "ran" in res["result"]
    pid = int(pidfile.read_text())
    time.sleep(0.2)
    assert (
        not Path(f"/proc/{pid}").exists()
        or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    )


@pytest.mark.parametrize(
    ("body", "why"),
    [("print('this is not json')", "not JSON"), ("sys.exit(3)", "exited with code 3")],
)
def test_garbage_fails_open_and_strict_denies(tmp_path, home, env, repo, fake_llm, body, why):
    cmd = hook_script(tmp_path, "bad", body + "\n")
    write_hooks(home, {"name": "bad", "type": "pre_tool", "command": cmd})
    fake_llm.script({"tool_calls": [bash("echo ran")]}, {"text": "done"})
    proc = vibe(["go", "--auto-approve"], env, repo)
    evs = events(proc.stdout)
    assert tool_results(evs)[0]["status"] == "ok"
    (hook,) = hooks_of(evs)
    assert hook["decision"] == "warning" and why in hook["message"]
    write_hooks(home, {"name": "bad", "type": "pre_tool", "command": cmd, "strict": True})
    fake_llm.script({"tool_calls": [bash("echo ran")]}, {"text": "done"})
    evs = events(vibe(["go", "--auto-approve"], env, repo).stdout)
    (res,) = tool_results(evs)
    assert res["status"] == "denied" and why in res["result"] and "strict" in res["result"]
    # text mode: the warning goes to stderr
    write_hooks(home, {"name": "bad", "type": "pre_tool", "command": cmd})
    fake_llm.script({"tool_calls": [bash("echo ran")]}, {"text": "done"})
    text = subprocess.run(
        [sys.executable, "-m", "vibe", "run", "go", "--auto-approve"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "hook bad" in text.stderr and text.stdout.strip() == "done"


def test_project_hooks_only_when_trusted(tmp_path, home, env, repo, fake_llm):
    cmd = hook_script(tmp_path, "proj", "print(json.dumps({'decision': 'deny', 'reason': 'P'}))\n")
    write_hooks(repo / ".vibe", {"name": "proj", "type": "pre_tool", "command": cmd})
    fake_llm.script({"tool_calls": [bash("echo ran")]}, {"text": "done"})
    evs = events(vibe(["go", "--auto-approve"], env, repo).stdout)
    assert not hooks_of(evs) and tool_results(evs)[0]["status"] == "ok"
    fake_llm.script({"tool_calls": [bash("echo ran")]}, {"text": "done"})
    evs = events(vibe(["go", "--auto-approve", "--trust"], env, repo).stdout)
    assert hooks_of(evs)[0]["name"] == "proj" and tool_results(evs)[0]["status"] == "denied"


def test_a_bad_hooks_file_is_a_config_error(home, env, repo, fake_llm):
    path = write_hooks(home, {"name": "x", "type": "sometimes", "command": "true"})
    proc = vibe(["go"], env, repo)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and "hooks[0].type" in proc.stderr
    write_hooks(home, {"name": "x", "type": "pre_tool", "command": "true", "timout": 3})
    proc = vibe(["go"], env, repo)
    assert proc.returncode == 1 and "hooks[0].timout" in proc.stderr
    assert not fake_llm.requests
