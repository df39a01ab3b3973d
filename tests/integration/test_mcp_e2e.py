"""`vibe run` with MCP servers against the loopback fake model: the tools are offered and listed
in `init`, a call goes through the permission check and the long-lived connection, a server
that fails is reported once, and no server process outlives vibe."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.fakes.server import FakeLLMServer
from tests.fakes.vibe_proc import fake_config, vibe, vibe_env

pytest.importorskip("mcp")

ROOT = Path(__file__).resolve().parents[2]


def config(url: str, servers: str, extra: str = "") -> str:
    return fake_config(url, top=f"{extra}\n", after=f"{servers}\n")


FAKE_SERVER = f"""
[[mcp_servers]]
name = "t"
transport = "stdio"
command = {json.dumps(sys.executable)}
args = ["-m", "tests.fakes.mcp_server"]
cwd = {json.dumps(str(ROOT))}
prompt = "The t server echoes."
"""


@pytest.fixture
def env(home):
    return vibe_env(home, PYTHONPATH=str(ROOT))


def run(env, cwd, *args, timeout=60):
    return vibe(env, cwd, "run", *args, timeout=timeout)


def test_mcp_tool_call_end_to_end(env, tmp_path):
    calls = [
        {"name": "t_counter", "arguments": {}},
        {"name": "t_echo", "arguments": {"text": "from the model"}},
    ]
    with FakeLLMServer() as fake:
        fake.script({"tool_calls": calls[:1]}, {"tool_calls": calls}, {"text": "done"})
        servers = FAKE_SERVER + '\n[[mcp_servers]]\nname = "gone"\ncommand = "no-such-xyz"\n'
        (Path(env["VIBE_HOME"]) / "config.toml").write_text(
            config(fake.url, servers, "") + '\n[tools.t_echo]\npermission = "always"\n'
            '[tools.t_counter]\npermission = "always"\n'
        )
        proc = run(env, tmp_path, "go", "--output", "stream-json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1 and "'gone' did not start" in errors[0]["message"]
    init = next(e for e in events if e["type"] == "init")
    assert {"t_echo", "t_counter", "bash"} <= set(init["tools"])
    results = [e for e in events if e["type"] == "tool_result"]
    assert [r["status"] for r in results] == ["ok", "ok", "ok"]
    assert results[0]["result"].startswith("count=1") and results[1]["result"].startswith("count=2")
    pid = int(results[1]["result"].split("pid=")[1])
    assert results[2]["result"] == "from the model"
    # the model saw the MCP schema (with the server's prompt) next to the built-ins
    tools = {t["function"]["name"]: t["function"] for t in fake.requests[0].body["tools"]}
    assert tools["t_echo"]["parameters"]["required"] == ["text"]
    assert tools["t_echo"]["description"].endswith("The t server echoes.")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the server went with vibe


def test_headless_ask_is_a_reported_denial_and_globs_select(env, tmp_path):
    with FakeLLMServer() as fake:
        fake.script(
            {"tool_calls": [{"name": "t_echo", "arguments": {"text": "x"}}]}, {"text": "ok"}
        )
        (Path(env["VIBE_HOME"]) / "config.toml").write_text(config(fake.url, FAKE_SERVER))
        proc = run(env, tmp_path, "go", "--output", "json", "--enabled-tools", "t_e*,read_file")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert [d["tool"] for d in result["permission_denials"]] == ["t_echo"]
    offered = {t["function"]["name"] for t in fake.requests[0].body["tools"]}
    assert offered == {"t_echo", "read_file"}


def test_text_mode_reports_a_failed_server_on_stderr(env, tmp_path):
    with FakeLLMServer() as fake:
        fake.script({"text": "fine"})
        servers = '[[mcp_servers]]\nname = "gone"\ncommand = "no-such-xyz"\n'
        (Path(env["VIBE_HOME"]) / "config.toml").write_text(config(fake.url, servers))
        proc = run(env, tmp_path, "go")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "fine"
    assert proc.stderr.count("did not start") == 1 and "Traceback" not in proc.stderr


def test_bad_mcp_entry_is_a_config_error(env, tmp_path):
    servers = '[[mcp_servers]]\nname = "a"\ncommand = "x"\n[[mcp_servers]]\nname = "w"\n'
    servers += 'transport = "http"\nurl = "ftp://nope"\n'
    (Path(env["VIBE_HOME"]) / "config.toml").write_text(config("http://127.0.0.1:9/v1", servers))
    proc = run(env, tmp_path, "go")
    assert proc.returncode == 1
    assert "mcp_servers[1].url" in proc.stderr and "http" in proc.stderr
    assert "Traceback" not in proc.stderr
