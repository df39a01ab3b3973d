"""The "always allow" choice keeps config.toml as the user wrote it (tomlkit, atomic); when
the file cannot be parsed the approval holds for the session and a warning says why; AGENTS.md
from the trusted root down; --add-dir folders appear in the system prompt."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from tests.unit.agent._harness import call, drive, finished
from vibe.agent.approval import ApprovalRequest, Decision
from vibe.agent.policy import save_always
from vibe.agent.prompts import agents_files, build_system_prompt
from vibe.build import add_dirs, assemble, mode_policy, pick_mode
from vibe.config import load_config
from vibe.errors import ConfigError, UsageError
from vibe.providers.scripted import ScriptedProvider

COMMENTED = """\
# my vibe config: keep these notes!
active_model = "fake"   # the fast one

[[providers]]
name = "fakeprov"          # local server
api_base = "http://127.0.0.1:9/v1"
api_key_env_var = ""
backend = "generic"

[[models]]
name = "fake-model"
provider = "fakeprov"
alias = "fake"

[tools.bash]
# commands I trust
allowlist = [
    "ls *",   # listing
]
default_timeout = 1200
"""


def test_save_always_keeps_comments_order_and_formatting(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text(COMMENTED)
    os.chmod(cfg, 0o644)
    save_always(cfg, "bash", "git status *")
    save_always(cfg, "bash", "git status *")  # already there: the file is not rewritten
    save_always(cfg, "edit", "src/*")
    text = cfg.read_text()
    # Everything the user wrote is still there, byte for byte, in the same order.
    listing = '    "ls *",   # listing\n'
    expected = COMMENTED.replace(listing, listing + '    "git status *",\n')
    assert text == expected + '\n[tools.edit]\nallowlist = ["src/*"]\n'
    data = tomllib.loads(text)
    assert data["tools"]["bash"]["allowlist"] == ["ls *", "git status *"]
    assert data["tools"]["bash"]["default_timeout"] == 1200
    assert data["tools"]["edit"] == {"allowlist": ["src/*"]}
    assert list(data) == ["active_model", "providers", "models", "tools"]
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o644  # the file keeps its mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"], "no temp files left"


def test_save_always_creates_the_file_and_writes_through_a_symlink(tmp_path):
    new = tmp_path / "home" / "config.toml"
    save_always(new, "bash", "make *")
    assert tomllib.loads(new.read_text()) == {"tools": {"bash": {"allowlist": ["make *"]}}}
    real = tmp_path / "dotfiles" / "vibe.toml"
    real.parent.mkdir()
    real.write_text('active_model = "x"  # mine\n')
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    save_always(link, "grep", "*")
    assert link.is_symlink() and "# mine" in real.read_text() and "grep" in real.read_text()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("active_model = \n", "not valid TOML"),
        ('tools = "no"\n', "`tools` is not a table"),
        ("[tools]\nbash = 3\n", "not a table"),
        ('[tools.bash]\nallowlist = "ls"\n', "not a list"),
    ],
)
def test_save_always_refuses_files_it_cannot_update_and_leaves_them_alone(tmp_path, text, why):
    cfg = tmp_path / "config.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=why) as info:
        save_always(cfg, "bash", "git *")
    assert "not saved" in str(info.value) and str(cfg) in str(info.value)
    assert cfg.read_text() == text


class AlwaysApprover:
    async def decide(self, request: ApprovalRequest) -> Decision:
        return Decision("always", pattern="touch *")


async def test_always_on_an_unparsable_config_still_applies_for_the_session(tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    home.mkdir()
    (home / "config.toml").write_text(COMMENTED)
    monkeypatch.setenv("VIBE_HOME", str(home))
    loaded = load_config(work, home=home)
    (home / "config.toml").write_text(COMMENTED + "broken = = 1\n")  # broken while running
    touch = {"tool_calls": [call("bash", {"command": "touch a.txt"})]}
    again = {"tool_calls": [call("bash", {"command": "touch b.txt"})]}
    provider = ScriptedProvider([touch, again, {"text": "done"}])
    warnings: list[str] = []
    run = assemble(
        loaded,
        work,
        AlwaysApprover(),
        pick_mode(loaded, None),
        provider_factory=lambda *_: provider,
        warn=warnings.append,
    )
    fin = finished(await drive(run.agent, "make files"))
    assert fin.status == "completed"
    assert (work / "a.txt").exists() and (work / "b.txt").exists()
    assert run.agent.session_rules == [("bash", "touch *")]
    assert len(warnings) == 1
    assert "for this session only" in warnings[0] and "not valid TOML" in warnings[0]
    assert (home / "config.toml").read_text().endswith("broken = = 1\n")


def test_agents_md_is_read_from_the_root_down_never_above(tmp_path):
    outer = tmp_path / "outer"
    work = outer / "work"
    (work / "sub").mkdir(parents=True)
    (tmp_path / "AGENTS.md").write_text("ABOVE")
    (outer / "AGENTS.md").write_text("OUTER")
    (work / "AGENTS.md").write_text("ROOT")
    (work / "sub" / "AGENTS.md").write_text("SUB")
    # Outside git the root is the working folder itself.
    assert agents_files(work) == [work / "AGENTS.md"]
    prompt = build_system_prompt(work, trusted=True)
    assert "ROOT" in prompt and "OUTER" not in prompt and "ABOVE" not in prompt
    # In a git repo: from the git root down to the working folder.
    (work / ".git").mkdir()
    assert agents_files(work / "sub") == [work / "AGENTS.md", work / "sub" / "AGENTS.md"]
    # An explicit root bounds it too; a root that is not above cwd means cwd only.
    assert agents_files(work / "sub", root=work / "sub") == [work / "sub" / "AGENTS.md"]
    assert agents_files(work / "sub", root=tmp_path / "elsewhere") == [work / "sub" / "AGENTS.md"]


def test_add_dirs_are_resolved_checked_and_named_in_the_prompt(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "link").symlink_to(other)
    assert add_dirs([str(other), str(tmp_path / "link")]) == (other.resolve(),)
    assert add_dirs(None) == ()
    with pytest.raises(UsageError, match=r"^--add-dir .*missing: not a directory$"):
        add_dirs([str(tmp_path / "missing")])
    prompt = build_system_prompt(tmp_path, extra_dirs=(other,))
    assert f"Additional folders you may work in: {other}" in prompt
    assert "Additional folders" not in build_system_prompt(Path(tmp_path))


def test_the_policy_gets_the_folders_the_secret_file_and_outside_workdir(tmp_path):
    home, work, other = tmp_path / "home", tmp_path / "work", tmp_path / "other"
    for folder in (home, work, other):
        folder.mkdir()
    (home / "config.toml").write_text('outside_workdir = "deny"\n')
    loaded = load_config(work, home=home)
    policy = mode_policy(loaded, pick_mode(loaded, "plan"), (other,))
    assert policy.extra_roots == (other,) and policy.outside_workdir == "deny"
    assert policy.protected == (home / ".env",) and policy.read_only
    assert (
        mode_policy(load_config(work, home=tmp_path), pick_mode(loaded, None)).outside_workdir
        == "ask"
    )
