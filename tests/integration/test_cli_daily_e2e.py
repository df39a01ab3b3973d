"""The daily-driver CLI through real `vibe` processes against the loopback fake server: -v,
--yolo, a bare -p reading stdin, --prompt-file, --add-dir with -p, --output-dir's export.json,
and max_output_tokens (sent as max_tokens, smaller when the context is nearly full; a looping
answer cut at the limit ends the run with exit 3 and says so)."""

from __future__ import annotations

import json

import pytest

from tests.fakes.server import FakeLLMServer
from tests.fakes.vibe_proc import fake_config, vibe, write_config
from vibe import __version__


def configure(env: dict[str, str], url: str, model_extra: str = "") -> None:
    prices = "input_price = 1.0\noutput_price = 2.0\n"
    write_config(env, fake_config(url, after=prices + model_extra))


def test_dash_v_prints_the_version(env, work):
    proc = vibe(env, work, "-v")
    assert proc.returncode == 0 and proc.stdout.strip() == f"vibe {__version__}"


def test_bare_p_reads_the_prompt_from_stdin_and_passes_flags_on(env, work):
    with FakeLLMServer() as fake:
        fake.script({"text": "from stdin"})
        configure(env, fake.url)
        proc = vibe(env, work, "-p", "--output", "json", stdin="summarise the repo\n")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"] == "from stdin"
    assert fake.requests[0].body["messages"][-1]["content"] == "summarise the repo\n"


def test_prompt_file(env, work, tmp_path):
    prompt = tmp_path / "task.md"
    prompt.write_text("the task from a file")
    with FakeLLMServer() as fake:
        fake.script({"text": "ok"}, {"text": "ok"})
        configure(env, fake.url)
        assert vibe(env, work, "run", "--prompt-file", str(prompt)).returncode == 0
        assert vibe(env, work, "-p", "--prompt-file", str(prompt)).returncode == 0
    assert [r.body["messages"][-1]["content"] for r in fake.requests] == [
        "the task from a file"
    ] * 2
    missing = vibe(env, work, "run", "--prompt-file", str(tmp_path / "nope.md"))
    assert missing.returncode == 1
    assert "--prompt-file" in missing.stderr and "No such file" in missing.stderr


def test_yolo_is_auto_approve_for_vibe_run(env, work):
    call = {"name": "write_file", "arguments": {"path": "a.txt", "content": "hi\n"}}
    with FakeLLMServer() as fake:
        fake.script({"tool_calls": [call]}, {"text": "written"})
        configure(env, fake.url)
        proc = vibe(env, work, "-p", "write a.txt", "--yolo")
    assert proc.returncode == 0, proc.stderr
    assert (work / "a.txt").read_text() == "hi\n"


def test_yolo_with_another_agent_is_a_usage_error(env, work):
    proc = vibe(env, work, "--yolo", "--agent", "plan")
    assert proc.returncode == 2 and "--yolo starts in the auto-approve mode" in proc.stderr


def test_add_dir_with_dash_p(env, work, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    call = {"name": "write_file", "arguments": {"path": str(other / "b.txt"), "content": "x"}}
    with FakeLLMServer() as fake:
        fake.script({"tool_calls": [call]}, {"text": "done"})
        configure(env, fake.url)
        proc = vibe(
            env, work, "-p", "write there", "--add-dir", str(other), "--agent", "accept-edits"
        )
    assert proc.returncode == 0, proc.stderr
    assert (other / "b.txt").read_text() == "x"
    help_text = vibe(env, work, "--help").stdout + vibe(env, work, "run", "--help").stdout
    assert help_text.count("--add-dir DIR") >= 2


def test_output_dir_writes_export_json(env, work, tmp_path):
    call = {"name": "write_file", "arguments": {"path": "src/new.py", "content": "x = 1\n"}}
    edit = {
        "name": "edit",
        "arguments": {"path": "src/new.py", "old_string": "x = 1", "new_string": "x = 2"},
    }
    out = tmp_path / "out" / "nested"
    with FakeLLMServer() as fake:
        fake.script(
            {"tool_calls": [call], "usage": {"prompt_tokens": 100, "completion_tokens": 10}},
            {"tool_calls": [edit], "usage": {"prompt_tokens": 120, "completion_tokens": 10}},
            {"text": "all done", "usage": {"prompt_tokens": 140, "completion_tokens": 5}},
        )
        configure(env, fake.url)
        proc = vibe(env, work, "run", "make src/new.py", "--auto-approve", "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "all done"
    export = json.loads((out / "export.json").read_text())
    assert export["status"] == "completed" and export["exit_code"] == 0
    assert export["result"] == "all done" and export["num_turns"] == 3
    assert export["usage"] == {"prompt_tokens": 360, "completion_tokens": 25, "total_tokens": 385}
    assert export["cost_usd"] == pytest.approx((360 * 1.0 + 25 * 2.0) / 1e6)
    assert export["files_changed"] == [
        {"path": "src/new.py", "tools": ["write_file", "edit"], "created": True}
    ]
    roles = [m["role"] for m in export["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert export["messages"][0]["content"] == "make src/new.py"
    assert export["session_id"] and export["model"] == "fake"


def test_output_dir_that_is_a_file_is_a_usage_error(env, work, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with FakeLLMServer() as fake:
        configure(env, fake.url)
        proc = vibe(env, work, "run", "hi", "--output-dir", str(blocker))
    assert proc.returncode == 1 and "--output-dir" in proc.stderr and not fake.requests


def test_max_output_tokens_is_sent_and_shrinks_near_a_full_context(env, work):
    with FakeLLMServer() as fake:
        fake.script({"text": "short"}, {"text": "short"})
        configure(env, fake.url, "max_output_tokens = 4000\n")
        assert vibe(env, work, "run", "hi").returncode == 0
        configure(env, fake.url, "max_context_length = 3000\nauto_compact_threshold = 2900\n")
        assert vibe(env, work, "run", "x " * 800).returncode == 0
    assert fake.requests[0].body["max_tokens"] == 4000
    assert 1024 <= fake.requests[1].body["max_tokens"] < 3000, "room left in the window"


def test_a_looping_answer_stops_at_the_cap_and_the_run_says_so(env, work):
    loop = {"name": "bash", "arguments": '{"command": "ls -l -l -l -l -l -l -l -l', "id": "c1"}
    with FakeLLMServer() as fake:
        fake.script({"tool_calls": [loop], "finish_reason": "length"})
        configure(env, fake.url, "max_output_tokens = 64\n")
        proc = vibe(env, work, "run", "--output", "json", "list files", "--auto-approve")
    assert proc.returncode == 3, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "limit" and "output token limit" in result["error"]
    assert "not run" in result["error"] and len(fake.requests) == 1
    assert fake.requests[0].body["max_tokens"] == 64


VLLM_OVERFLOW = (
    "This model's maximum context length is 4096 tokens. However, you requested {total} tokens "
    "({prompt} in the messages, {cap} in the completion). Please reduce the length of the "
    "messages or completion."
)


def test_the_answer_cap_fits_a_small_server_window_learned_from_its_error(env, work):
    """vLLM refuses prompt + max_tokens > max_model_len: the default 32,768 cap must not make a
    4k-window server unusable; vibe retries once with the room it states and keeps to it."""

    def small_window(request):
        cap = request.body.get("max_tokens") or 0
        if cap + 1000 > 4096:
            message = VLLM_OVERFLOW.format(total=cap + 1000, prompt=1000, cap=cap)
            return {"status": 400, "body": {"object": "error", "message": message, "code": 400}}
        if len([r for r in fake.requests if r.turn is not None]) <= 1:
            return {"tool_calls": [{"name": "todo", "arguments": {"todos": []}}], **usage}
        return {"text": "fits", **usage}

    usage = {"usage": {"prompt_tokens": 1000, "completion_tokens": 10}}  # as its error counts

    with FakeLLMServer() as fake:
        fake.script(small_window)
        configure(env, fake.url)
        proc = vibe(env, work, "run", "--output", "json", "hi")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"] == "fits"
    caps = [r.body["max_tokens"] for r in fake.requests]
    assert caps[0] == 32768 and caps[1] == 4096 - 1000 - 8
    # Later calls keep within the learned window instead of failing first again.
    assert all(c + 1000 <= 4096 for c in caps[2:]) and len(caps) == 3, caps
