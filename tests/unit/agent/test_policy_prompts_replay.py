"""Modes to permission policies, tool selection, "always" saved to config.toml, the system
prompt (environment, AGENTS.md only when trusted), and record/replay of model exchanges."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.unit.agent._harness import call, drive, finished, make_agent
from tools.registry import builtin_tools
from vibe.agent.policy import build_policy, parse_tool_list, save_always, select_tools
from vibe.agent.prompts import build_system_prompt
from vibe.config import ModeConfig, ToolConfig, VibeConfig
from vibe.errors import UsageError
from vibe.providers.recording import RecordingProvider, ReplayProvider


@pytest.mark.parametrize(
    ("safety", "flags"),
    [
        ("safe", (True, False, False)),
        ("neutral", (False, False, False)),
        ("destructive", (False, True, False)),
        ("yolo", (False, False, True)),
    ],
)
def test_safety_levels(safety, flags):
    policy = build_policy(VibeConfig(), ModeConfig(name="m", safety=safety))
    assert (policy.read_only, policy.auto_edits, policy.auto_approve) == flags


def test_tool_tables_and_mode_overrides():
    config = VibeConfig(tools={"bash": ToolConfig(allowlist=("make *",), default_timeout=1200)})
    mode = ModeConfig(name="m", tools={"bash": ToolConfig(denylist=("rm *",))})
    policy = build_policy(config, mode)
    assert policy.tools["bash"].allowlist == ("make *",)
    assert policy.tools["bash"].denylist == ("rm *",)
    assert policy.tools["bash"].permission == "ask"
    assert policy.tools["read_file"].permission == "always"


def test_select_tools():
    tools = builtin_tools()
    mode = ModeConfig(name="m", disabled_tools=("todo",))
    assert set(select_tools(tools, mode, ["bash", "todo", "grep"])) == {"bash", "grep"}
    assert "bash" not in select_tools(tools, ModeConfig(name="m"), None, ["bash"])
    with pytest.raises(UsageError, match="unknown tool 'nope'"):
        select_tools(tools, mode, ["nope"])
    assert parse_tool_list(" bash, grep ,") == ["bash", "grep"] and parse_tool_list(None) is None


def test_save_always_keeps_the_rest_of_the_file(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        'active_model = "x"\n[tools.bash]\ndefault_timeout = 1200\nallowlist = ["ls *"]\n'
    )
    save_always(cfg, "bash", "git *")
    save_always(cfg, "bash", "git *")
    save_always(cfg, "edit", "src/*")
    data = tomllib.loads(cfg.read_text())
    assert data["active_model"] == "x"
    assert data["tools"]["bash"] == {"default_timeout": 1200, "allowlist": ["ls *", "git *"]}
    assert data["tools"]["edit"]["allowlist"] == ["src/*"]
    assert not list(tmp_path.glob(".*tmp"))


def _git_repo(path: Path) -> None:
    run = lambda *a: subprocess.run(["git", *a], cwd=path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "feature")
    (path / "a.txt").write_text("a")
    run("add", "a.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first commit")
    (path / "b.txt").write_text("b")


def test_system_prompt_environment_and_agents_md(tmp_path):
    _git_repo(tmp_path)
    (tmp_path / "AGENTS.md").write_text("Always run `make check`.")
    untrusted = build_system_prompt(tmp_path, ["bash", "edit"])
    assert f"Working directory: {tmp_path}" in untrusted
    assert "Git branch: feature" in untrusted and "?? b.txt" in untrusted
    assert "first commit" in untrusted and "Available tools: bash, edit." in untrusted
    assert "make check" not in untrusted
    assert "make check" in build_system_prompt(tmp_path, ["bash"], trusted=True)
    custom = build_system_prompt(tmp_path, mode_prompt="You only plan.")
    assert custom.startswith("You only plan.") and "Working directory" in custom


def test_system_prompt_outside_git(tmp_path):
    assert "not a git repository" in build_system_prompt(tmp_path)


async def test_record_then_replay_gives_the_same_run(tmp_path):
    script = [
        {"tool_calls": [call("write_file", {"path": "f.txt", "content": "sk-SECRET-42 data"})]},
        {
            "text": "wrote it, key sk-SECRET-42",
            "usage": {"prompt_tokens": 9, "completion_tokens": 3},
        },
    ]
    rec = tmp_path / "rec.jsonl"
    agent = make_agent(tmp_path / "one", script)
    agent.provider = RecordingProvider(agent.provider, rec, ["sk-SECRET-42"])
    first = finished(await drive(agent, "write f"))
    assert "sk-SECRET-42" not in rec.read_text()

    replayed = make_agent(tmp_path / "two", [])
    replayed.provider = ReplayProvider(rec)
    again = finished(await drive(replayed, "write f"))
    assert again.status == "completed" and again.num_turns == 2
    assert again.text == first.text.replace("sk-SECRET-42", "***")
    assert (tmp_path / "two" / "work" / "f.txt").exists()


async def test_replay_fails_clearly_when_the_conversation_diverges(tmp_path):
    rec = tmp_path / "rec.jsonl"
    agent = make_agent(tmp_path / "one", [{"text": "hi"}])
    agent.provider = RecordingProvider(agent.provider, rec, [])
    await drive(agent, "hello")
    replayed = make_agent(tmp_path / "two", [])
    replayed.provider = ReplayProvider(rec)
    fin = finished(await drive(replayed, "something else"))
    assert fin.exit_code == 2 and "replay diverged at model call 1" in fin.error


def test_replay_rejects_a_non_recording(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"hello": 1}\n')
    with pytest.raises(UsageError, match="not a vibe recording"):
        ReplayProvider(bad)
    with pytest.raises(UsageError, match="--replay"):
        ReplayProvider(tmp_path / "missing.jsonl")
