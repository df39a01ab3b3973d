"""`vibe run` as a real process against the loopback fake server: the model-card config,
config errors (exit 1), API failures (exit 2) and retried rate limits (exit 0)."""

from __future__ import annotations

import json
import subprocess

from tests.fakes import vibe_proc
from tests.fakes.configs import MODEL_CARD
from tests.fakes.server import FakeLLMServer
from tests.fakes.vibe_proc import write_config


def model_card(url: str, budget: float = 1.0) -> str:
    # Top-level settings must come before the first table.
    top = f"api_retry_max_elapsed_time = {budget}\napi_read_timeout = 10\n"
    return vibe_proc.model_card(url, top=top)


def vibe_run(env, workdir, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return vibe_proc.vibe(env, workdir, "run", *args, timeout=timeout)


def test_model_card_config_answers_with_reasoning_kept_out(env, workdir):
    with FakeLLMServer(dialect="reasoning") as fake:
        fake.script({"reasoning": "2 plus 2, carry nothing", "text": "The answer is 4."})
        write_config(env, model_card(fake.url))
        proc = vibe_run(env, workdir, "What is 2+2?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "The answer is 4."
    assert "carry nothing" not in proc.stdout
    assert "Traceback" not in proc.stderr
    body = fake.requests[0].body
    assert body["model"] == "mistralai/Mistral-Medium-3.5-128B"
    assert body["reasoning_effort"] == "high" and body["temperature"] == 0.7
    assert body["messages"][-1] == {"role": "user", "content": "What is 2+2?"}
    assert "authorization" not in fake.requests[0].headers, 'api_key_env_var = "" means no auth'


def test_stream_json_ends_with_a_result_event(env, workdir):
    with FakeLLMServer(dialect="reasoning") as fake:
        fake.script(
            {
                "reasoning": "think",
                "text": "done",
                "usage": {"prompt_tokens": 10, "completion_tokens": 2},
            }
        )
        write_config(env, model_card(fake.url))
        proc = vibe_run(env, workdir, "go", "--output", "stream-json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0]["type"] == "init"
    last = events[-1]
    assert (last["type"], last["status"], last["exit_code"], last["result"]) == (
        "result",
        "completed",
        0,
        "done",
    )
    assert last["usage"]["prompt_tokens"] == 10


def test_bad_toml_exits_1_naming_the_file(env, workdir):
    path = write_config(env, 'active_model = "unterminated\n')
    proc = vibe_run(env, workdir, "hi")
    assert proc.returncode == 1
    assert str(path) in proc.stderr and "invalid TOML" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_provider_exits_1(env, workdir):
    write_config(env, MODEL_CARD.replace('provider = "vllm"', 'provider = "vllm2"'))
    proc = vibe_run(env, workdir, "hi")
    assert proc.returncode == 1
    assert "models[" in proc.stderr and "unknown provider 'vllm2'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_api_key_exits_1_before_any_request(env, workdir):
    with FakeLLMServer() as fake:
        text = model_card(fake.url).replace('api_key_env_var = ""', 'api_key_env_var = "FAKE_K"')
        write_config(env, text)
        env.pop("FAKE_K", None)
        proc = vibe_run(env, workdir, "hi")
    assert proc.returncode == 1
    assert "FAKE_K is not set" in proc.stderr and "api_key_env_var" in proc.stderr
    assert fake.requests == []


def test_persistent_500_exits_2_without_traceback(env, workdir):
    with FakeLLMServer(dialect="reasoning") as fake:
        fake.script(lambda req: {"status": 500, "body": {"error": {"message": "boom"}}})
        write_config(env, model_card(fake.url, budget=1.0))
        proc = vibe_run(env, workdir, "hi")
    assert proc.returncode == 2, proc.stderr
    assert "HTTP 500" in proc.stderr and "boom" in proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert len(fake.requests) >= 2


def test_two_429s_then_success_exits_0(env, workdir):
    with FakeLLMServer(dialect="reasoning") as fake:
        fake.script(
            {"status": 429, "retry_after": 0},
            {"status": 429, "retry_after": 0},
            {"text": "made it"},
        )
        write_config(env, model_card(fake.url, budget=30))
        proc = vibe_run(env, workdir, "hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "made it"
    assert len(fake.requests) == 3
