"""`vibe serve` on a scripted tiny Mistral model (tests/fakes/scripted_model.py): `[THINK]`
reasoning comes out as `reasoning_content`, `[TOOL_CALLS]` as OpenAI `tool_calls`, and vibe's
own `generic` provider (the model-card config, api_style = "reasoning") runs a tool round trip
against it end to end. SIGTERM lets an in-flight stream finish, then the server exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import httpx
import pytest

pytest.importorskip("torch")
pytest.importorskip("mistral_common")
openai = pytest.importorskip("openai")

from tests.fakes import scripted_model  # noqa: E402
from tests.fakes.configs import MODEL_CARD  # noqa: E402
from tests.fakes.serve_proc import Served, serve  # noqa: E402

TOOLS = [{"type": "function", "function": {
    "name": "todo", "description": "update the list",
    "parameters": {"type": "object", "properties": {"todos": {"type": "array"}}},
}}]  # fmt: skip
USER = [{"role": "user", "content": "make a plan"}]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return scripted_model.build(tmp_path_factory.mktemp("scripted"))


@pytest.fixture(scope="module")
def server(model_dir) -> Served:
    args = ("--model", str(model_dir), "--served-model-name", "scripted", "--max-context",
            str(scripted_model.CONTEXT))  # fmt: skip
    with serve(*args) as s:
        yield s


@pytest.fixture
def client(server: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)


def test_reasoning_and_tool_calls_not_streamed(client):
    r = client.chat.completions.create(model="scripted", messages=USER, tools=TOOLS, temperature=0)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    msg = choice.message
    assert msg.model_extra["reasoning_content"] == scripted_model.REASONING
    (call,) = msg.tool_calls
    assert call.type == "function" and call.function.name == "todo"
    assert json.loads(call.function.arguments) == {"todos": []}
    assert len(call.id) == 9


def test_reasoning_and_tool_calls_streamed(client):
    stream = client.chat.completions.create(
        model="scripted", messages=USER, tools=TOOLS, temperature=0, stream=True
    )
    reasoning, calls, finish = [], [], None
    for c in stream:
        delta = c.choices[0].delta
        if (extra := (delta.model_extra or {}).get("reasoning_content")) is not None:
            reasoning.append(extra)
        calls += delta.tool_calls or []
        finish = c.choices[0].finish_reason or finish
    assert "".join(reasoning) == scripted_model.REASONING
    assert [(t.index, t.function.name) for t in calls] == [(0, "todo")]
    assert json.loads(calls[0].function.arguments) == {"todos": []}
    assert finish == "tool_calls"


def test_tool_result_turn_answers_text(client):
    history = [*USER, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "abcdefghi", "type": "function",
         "function": {"name": "todo", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "abcdefghi", "content": "ok"}]  # fmt: skip
    r = client.chat.completions.create(model="scripted", messages=history, tools=TOOLS)
    assert r.choices[0].message.content == scripted_model.ANSWER
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens_details.cached_tokens > 0  # the prefix cache across requests


def test_vibe_run_through_a_generic_provider(server, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    (work / ".git").mkdir(parents=True)
    (home / "config.toml").write_text(
        "api_read_timeout = 30\n" + MODEL_CARD.replace("http://<your-host-url>:8000/v1", server.v1)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    env.update(VIBE_HOME=str(home), NO_COLOR="1")
    r = subprocess.run(
        [sys.executable, "-m", "vibe", "run", "--output", "stream-json", "make a plan"],
        cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert r.returncode == 0, r.stderr
    kinds = [e["type"] for e in events]
    assert "tool_call" in kinds and "tool_result" in kinds
    call = next(e for e in events if e["type"] == "tool_call")
    assert "todo" in json.dumps(call)
    result = events[-1]
    assert result["type"] == "result" and result["result"] == scripted_model.ANSWER
    assert result["num_turns"] == 2


def test_sigterm_drains_in_flight_streams(model_dir):
    with serve("--model", str(model_dir), "--max-context", "4096") as s:
        # "~" repeats itself until max_tokens: a few seconds of generation.
        body = {"prompt": scripted_model.LOOP, "stream": True, "max_tokens": 2000, "temperature": 0}
        lines: list[str] = []

        def consume() -> None:
            with httpx.stream("POST", s.v1 + "/completions", json=body, timeout=30) as r:
                for line in filter(None, r.iter_lines()):
                    lines.append(line)
                    if len(lines) == 1:
                        s.proc.send_signal(signal.SIGTERM)

        t = threading.Thread(target=consume)
        t.start()
        t.join(30)
        assert s.proc.wait(timeout=20) in (0, -signal.SIGTERM)
        assert lines[-1] == "data: [DONE]"
        assert any('"finish_reason": "length"' in line for line in lines)  # ran to the end
        assert sum('"text"' in line for line in lines) > 1000
