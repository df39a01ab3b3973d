"""Secrets end to end: the real `vibe run` process against the loopback fake server. Credentials
in the environment never reach the model, the session files or --record output unless
env_passthrough lets them; keys pasted with a newline work; keys and settings that cannot make
a request end the run at once with exit 1, naming the setting and never the key."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes import vibe_proc
from tests.fakes.server import FakeLLMServer
from tests.fakes.vibe_proc import fake_config, vibe_env

KEY = "sk-e2e-SECRET-51d0c3a"
MARKERS = {
    "GITHUB_TOKEN": "marker-gh-7c1e",
    "AWS_SECRET_ACCESS_KEY": "marker-aws-93b2",
    "DB_PASSWORD": "marker-db-5a0f",
}


def config(url: str, extra: str = "", api_base: str | None = None) -> str:
    top = f"api_retry_max_elapsed_time = 30\n{extra}\n"
    return fake_config(api_base or url, top=top, key_env="LLM_AUTH")


def environ(home: Path, key: str = KEY) -> dict[str, str]:
    # LLM_AUTH does not look like a secret by its name: only the provider config hides it.
    return vibe_env(home, **MARKERS, LLM_AUTH=key, HARMLESS_VAR="visible")


def vibe(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return vibe_proc.vibe(env, cwd, "run", *args, timeout=90)


def printenv_script() -> list[dict]:
    return [
        {"tool_calls": [{"name": "bash", "arguments": {"command": "printenv; echo end-of-env"}}]},
        {"text": "done"},
    ]


def tool_result_sent_back(fake: FakeLLMServer) -> str:
    (tool,) = [m for m in fake.requests[1].messages if m["role"] == "tool"]
    assert "end-of-env" in tool["content"], tool["content"][:500]
    return tool["content"]


def everything_written(home: Path, *extra: Path) -> str:
    files = [p for p in home.rglob("*") if p.is_file()] + list(extra)
    return "\n".join(p.read_text(errors="replace") for p in files)


def test_printenv_hands_no_credential_to_the_model_or_to_disk(home, workdir, tmp_path):
    rec = tmp_path / "rec.jsonl"
    with FakeLLMServer() as fake:
        fake.script(printenv_script())
        (home / "config.toml").write_text(config(fake.url))
        args = ["show env", "--auto-approve", "--output", "stream-json", "--record", str(rec)]
        proc = vibe(environ(home), workdir, *args)
    assert proc.returncode == 0, proc.stderr
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}", "the key was used"
    sent = tool_result_sent_back(fake)
    assert "HARMLESS_VAR=visible" in sent
    written = everything_written(home, rec) + proc.stdout + proc.stderr
    assert "HARMLESS_VAR=visible" in written, "the tool output was recorded"
    for text in (sent, written):
        for name, value in MARKERS.items():
            assert value not in text and f"{name}=" not in text
        assert KEY not in text and "LLM_AUTH=" not in text


def test_env_passthrough_lets_one_variable_through_on_purpose(home, workdir, tmp_path):
    rec = tmp_path / "rec.jsonl"
    with FakeLLMServer() as fake:
        fake.script(printenv_script())
        extra = '[tools.bash]\nenv_passthrough = ["GITHUB_TOKEN"]\n'
        (home / "config.toml").write_text(config(fake.url) + extra)
        args = ["show env", "--auto-approve", "--record", str(rec)]
        proc = vibe(environ(home), workdir, *args)
    assert proc.returncode == 0, proc.stderr
    sent = tool_result_sent_back(fake)
    assert f"GITHUB_TOKEN={MARKERS['GITHUB_TOKEN']}" in sent
    assert MARKERS["GITHUB_TOKEN"] in rec.read_text()
    assert MARKERS["AWS_SECRET_ACCESS_KEY"] not in sent and KEY not in sent


def test_a_key_pasted_with_its_newline_works(home, workdir):
    with FakeLLMServer() as fake:
        fake.script({"text": "all good"})
        (home / "config.toml").write_text(config(fake.url))
        proc = vibe(environ(home, key=f" {KEY}\n"), workdir, "hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "all good"
    assert fake.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_a_key_that_cannot_be_sent_exits_1_at_once_naming_the_variable(home, workdir):
    bad = f"{KEY}\nsecond-line"
    with FakeLLMServer() as fake:
        fake.script({"text": "never"})
        (home / "config.toml").write_text(config(fake.url))
        start = time.monotonic()
        proc = vibe(environ(home, key=bad), workdir, "hi")
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - start < 30, "not retried for the whole retry budget"
    assert fake.requests == []
    assert "LLM_AUTH" in proc.stderr and "api_key_env_var" in proc.stderr
    for form in (KEY, json.dumps(bad)[1:-1], "second-line"):
        assert form not in proc.stderr and form not in proc.stdout
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("api_base", "extra", "key_path", "message"),
    [
        ("ftp://127.0.0.1/v1", "", "providers[0].api_base", "http:// or https://"),
        (None, "[tools.Bash]\ndenylist = ['rm *']\n", "tools.Bash", "did you mean 'bash'?"),
        (None, "api_read_timeout = inf\n", "api_read_timeout", "finite"),
    ],
)
def test_config_mistakes_exit_1_naming_file_and_key(home, workdir, api_base, extra, key_path,
                                                    message):  # fmt: skip
    with FakeLLMServer() as fake:
        text = config(fake.url, api_base=api_base)
        if extra.startswith("["):
            text += extra
        else:
            text = extra + text
        (home / "config.toml").write_text(text)
        proc = vibe(environ(home), workdir, "hi")
    assert proc.returncode == 1, proc.stderr
    assert str(home / "config.toml") in proc.stderr
    assert key_path in proc.stderr and message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert fake.requests == []


def test_a_provider_key_in_tool_output_is_redacted_in_every_form(home, workdir, tmp_path):
    odd = 'sk-odd\\key"51d0c3'  # a backslash and a quote: its JSON and repr forms differ
    forms = {"raw": odd, "json": json.dumps(odd)[1:-1], "repr": repr(odd)[1:-1]}
    assert len(set(forms.values())) == 3
    (workdir / "leak.txt").write_text("".join(f"{k}=[{v}]\n" for k, v in forms.items()))
    rec = tmp_path / "rec.jsonl"
    script = [
        {"tool_calls": [{"name": "bash", "arguments": {"command": "cat leak.txt"}}]},
        {"text": "done"},
    ]
    with FakeLLMServer() as fake:
        fake.script(script)
        (home / "config.toml").write_text(config(fake.url))
        args = ["read it", "--auto-approve", "--record", str(rec)]
        proc = vibe(environ(home, key=odd + "\n"), workdir, *args)
    assert proc.returncode == 0, proc.stderr
    assert fake.requests[0].headers["authorization"] == f"Bearer {odd}"
    (tool,) = [m for m in fake.requests[1].messages if m["role"] == "tool"]
    assert "raw=[***]" in tool["content"] and "json=[***]" in tool["content"]
    assert "repr=[***]" in tool["content"]
    written = everything_written(home, rec) + proc.stdout + proc.stderr
    for text in (tool["content"], written):
        for form in forms.values():
            assert form not in text
