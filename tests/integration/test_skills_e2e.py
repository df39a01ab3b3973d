"""Skills, the AGENTS.md hierarchy and plan mode through a real `vibe run` against the loopback
fake server: what the model received (system prompt, user message, tool results) is read back
from the server's recorded requests."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.fakes.vibe_proc import fake_config, vibe, vibe_env, write_config

RELEASE_NOTES = """---
name: release-notes
description: Write release notes from the git log.
allowed-tools: Write Bash(git log:*)
---
# Release notes
Write release notes for version $ARGUMENTS from the git log.
"""


@pytest.fixture
def user_home(tmp_path) -> Path:
    user = tmp_path / "user"
    user.mkdir()
    return user


def configure(home: Path, url: str, extra: str = "") -> None:
    write_config(home, fake_config(url, top=extra))


def skill(folder: Path, name: str, description: str = "", body: str = "", text: str = "") -> Path:
    (folder / name).mkdir(parents=True, exist_ok=True)
    path = folder / name / "SKILL.md"
    path.write_text(
        text or f"---\nname: {name}\ndescription: {description or name + ' skill'}\n---\n{body}\n"
    )
    return path


def vibe_run(home: Path, user: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return vibe(vibe_env(home, HOME=str(user)), cwd, "run", "--output", "json", *args)


def result(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def system(fake_llm, n: int = 0) -> str:
    return fake_llm.requests[n].messages[0]["content"]


def user(fake_llm, n: int = 0) -> str:
    return next(m["content"] for m in fake_llm.requests[n].messages if m["role"] == "user")


def tool_results(fake_llm) -> list[str]:
    return [m["content"] for m in fake_llm.requests[-1].messages if m["role"] == "tool"]


def test_skill_is_listed_loaded_by_the_tool_with_its_files(home, user_home, work, fake_llm):
    configure(home, fake_llm.url)
    path = skill(home / "skills", "release-notes", text=RELEASE_NOTES)
    (path.parent / "template.md").write_text("## v\n")
    (path.parent / "scripts").mkdir()
    (path.parent / "scripts" / "collect.sh").write_text("git log\n")
    template, config = path.parent / "template.md", home / "config.toml"
    fake_llm.script(
        {"tool_calls": [{"name": "skill", "arguments": {"name": "release-notes"}}]},
        {"tool_calls": [{"name": "read_file", "arguments": {"path": str(template)}}]},
        {"tool_calls": [{"name": "read_file", "arguments": {"path": str(config)}}]},
        {"text": "done"},
    )
    out = result(vibe_run(home, user_home, work, "write the notes"))
    assert out["result"] == "done"
    # a bundled file may be read although outside the working folder; nothing else there
    assert [d["tool"] for d in out["permission_denials"]] == ["read_file"]
    assert str(config) in out["permission_denials"][0]["reason"]
    loaded, bundled, _ = tool_results(fake_llm)
    assert "## v" in bundled
    assert "- release-notes: Write release notes from the git log." in system(fake_llm)
    assert "skill" in [t["function"]["name"] for t in fake_llm.requests[0].body["tools"]]
    assert "Write release notes for version $ARGUMENTS" in loaded
    assert "name: release-notes" not in loaded  # the front matter stays out
    assert "- scripts/collect.sh" in loaded and "- template.md" in loaded
    assert str(path.parent) in loaded


def test_no_skill_tool_without_skills(home, user_home, work, fake_llm):
    configure(home, fake_llm.url)
    fake_llm.script({"text": "ok"})
    result(vibe_run(home, user_home, work, "hi"))
    names = [t["function"]["name"] for t in fake_llm.requests[0].body["tools"]]
    assert "skill" not in names and "ask_user_question" not in names
    assert "# Skills" not in system(fake_llm)


def test_slash_command_sends_the_skill_with_its_arguments(home, user_home, work, fake_llm):
    configure(home, fake_llm.url)
    skill(home / "skills", "release-notes", text=RELEASE_NOTES)
    fake_llm.script({"text": "notes"})
    out = result(vibe_run(home, user_home, work, "/release-notes v1.2"))
    assert out["result"] == "notes"
    sent = user(fake_llm)
    assert sent.startswith("/release-notes v1.2")
    assert "Write release notes for version v1.2 from the git log." in sent


def test_allowed_tools_run_without_asking_during_the_skill_turn_only(
    home, user_home, work, tmp_path, fake_llm
):
    configure(home, fake_llm.url)
    skill(home / "skills", "release-notes", text=RELEASE_NOTES)
    outside = tmp_path / "outside.md"
    writes = {
        "tool_calls": [
            {"name": "write_file", "arguments": {"path": "NOTES.md", "content": "v1.2\n"}},
            {"name": "write_file", "arguments": {"path": str(outside), "content": "x"}},
        ]
    }
    fake_llm.script(writes, {"text": "done"})
    out = result(vibe_run(home, user_home, work, "/release-notes v1.2"))
    assert (work / "NOTES.md").read_text() == "v1.2\n"
    # the working-folder boundary still holds: the write outside was asked about (denied)
    assert [d["tool"] for d in out["permission_denials"]] == ["write_file"]
    assert not outside.exists()
    # a plain turn afterwards: write_file asks again (denied headless)
    fake_llm.requests.clear()
    fake_llm.script(
        {"tool_calls": [{"name": "write_file", "arguments": {"path": "B.md", "content": "b"}}]},
        {"text": "done"},
    )
    out = result(vibe_run(home, user_home, work, "write B"))
    assert len(out["permission_denials"]) == 1 and not (work / "B.md").exists()


def test_search_order_first_match_by_name_wins(home, user_home, work, tmp_path, fake_llm):
    extra = tmp_path / "extra-skills"
    configure(home, fake_llm.url, f'skill_paths = ["{extra}"]\n')
    skill(user_home / ".agents" / "skills", "a", "from agents home")
    skill(user_home / ".agents" / "skills", "b", "b from agents home")
    skill(home / "skills", "a", "from vibe home")
    skill(home / "skills", "c", "c from vibe home")
    skill(work / ".vibe" / "skills", "c", "c from the project")
    skill(work / ".agents" / "skills", "d", "d from the project agents")
    skill(extra, "d", "d from skill_paths")
    fake_llm.script({"text": "ok"})
    result(vibe_run(home, user_home, work, "--trust", "hi"))
    prompt = system(fake_llm)
    assert "- a: from vibe home" in prompt
    assert "- b: b from agents home" in prompt
    assert "- c: c from the project" in prompt
    assert "- d: d from skill_paths" in prompt
    assert "- a: from agents home" not in prompt and "c from vibe home" not in prompt


def test_project_skills_and_agents_md_need_trust(home, user_home, work, fake_llm):
    configure(home, fake_llm.url)
    skill(work / ".vibe" / "skills", "proj", "project skill")
    (work / "AGENTS.md").write_text("Use tabs in this project.\n")
    (home / "AGENTS.md").write_text("Always answer in English.\n")
    fake_llm.script({"text": "ok"})
    result(vibe_run(home, user_home, work, "hi"))
    prompt = system(fake_llm)
    assert "project skill" not in prompt and "Use tabs" not in prompt
    assert "Always answer in English." in prompt  # $VIBE_HOME/AGENTS.md: always
    fake_llm.requests.clear()
    fake_llm.script({"text": "ok"})
    result(vibe_run(home, user_home, work, "--trust", "hi"))
    prompt = system(fake_llm)
    assert "- proj: project skill" in prompt and "Use tabs in this project." in prompt
    assert "Always answer in English." in prompt


def test_agents_md_from_the_trust_root_down_to_cwd(home, user_home, work, fake_llm):
    configure(home, fake_llm.url)
    (work / "AGENTS.md").write_text("ROOT RULES\n")
    (work / "pkg").mkdir()
    (work / "pkg" / "AGENTS.md").write_text("PKG RULES\n")
    (work.parent / "AGENTS.md").write_text("ABOVE THE ROOT\n")
    fake_llm.script({"text": "ok"})
    result(vibe_run(home, user_home, work / "pkg", "--trust", "hi"))
    prompt = system(fake_llm)
    assert prompt.index("ROOT RULES") < prompt.index("PKG RULES")
    assert "ABOVE THE ROOT" not in prompt


def test_nested_agents_md_is_added_once_to_the_first_result(home, user_home, work, fake_llm):
    configure(home, fake_llm.url)
    sub = work / "sub" / "deep"
    sub.mkdir(parents=True)
    (work / "sub" / "AGENTS.md").write_text("SUB RULES: run make check\n")
    (sub / "a.txt").write_text("alpha\n")
    (sub / "b.txt").write_text("beta\n")
    (work / "top.txt").write_text("top\n")
    calls = [
        {"name": "read_file", "arguments": {"path": "top.txt"}},
        {"name": "read_file", "arguments": {"path": "sub/deep/a.txt"}},
        {"name": "grep", "arguments": {"pattern": "beta", "path": "sub"}},
        {"name": "read_file", "arguments": {"path": "sub/deep/b.txt"}},
    ]
    script = [{"tool_calls": [c]} for c in calls] + [{"text": "done"}]
    fake_llm.script(script)
    result(vibe_run(home, user_home, work, "--trust", "look"))
    results = tool_results(fake_llm)
    assert len(results) == 4
    assert ["SUB RULES" in r for r in results] == [False, True, False, False]
    assert "SUB RULES" not in system(fake_llm)
    # untrusted: never added
    fake_llm.requests.clear()
    fake_llm.script(script)
    (home / "trusted_folders.toml").unlink(missing_ok=True)
    result(vibe_run(home, user_home, work, "look"))
    assert not any("SUB RULES" in r for r in tool_results(fake_llm))


def test_plan_mode_reminder_plan_file_and_plan_as_result(home, user_home, work, fake_llm):
    configure(home, fake_llm.url)
    (work / "src.py").write_text("x = 1\n")

    def respond(request):
        messages = request.messages
        if len(messages) == 2:  # system + user: write the plan where the reminder says
            path = re.search(r"write your plan, as Markdown, to (\S+\.md)", messages[1]["content"])
            assert path, messages[1]["content"]
            return {
                "tool_calls": [
                    {
                        "name": "write_file",
                        "arguments": {"path": path.group(1), "content": "# Plan\n1. do it\n"},
                    },
                    {"name": "write_file", "arguments": {"path": "src.py", "content": "x = 2\n"}},
                ]
            }
        return {"text": "I wrote the plan."}

    fake_llm.script(respond)
    out = result(vibe_run(home, user_home, work, "--agent", "plan", "plan the change"))
    assert "Plan mode is on" in user(fake_llm)
    assert out["result"] == "# Plan\n1. do it"
    plan = home / "plans" / f"{out['session_id']}.md"
    assert plan.read_text() == "# Plan\n1. do it\n"
    assert (work / "src.py").read_text() == "x = 1\n"  # read-only otherwise
    assert [d["tool"] for d in out["permission_denials"]] == ["write_file"]
    names = [t["function"]["name"] for t in fake_llm.requests[0].body["tools"]]
    assert "exit_plan_mode" not in names and "ask_user_question" not in names


def test_plan_file_permission_is_exact(home, user_home, work, fake_llm):
    configure(home, fake_llm.url)
    other = home / "plans" / "someone-else.md"
    fake_llm.script(
        {"tool_calls": [{"name": "write_file", "arguments": {"path": str(other), "content": "x"}}]},
        {"text": "done"},
    )
    out = result(vibe_run(home, user_home, work, "--agent", "plan", "plan"))
    assert len(out["permission_denials"]) == 1 and not other.exists()


def test_broken_skills_are_skipped_with_one_warning_each(home, user_home, work, fake_llm):
    configure(home, fake_llm.url)
    skills = home / "skills"
    bad_yaml = skill(skills, "bad-yaml", text="---\nname: bad-yaml\ndescription: [oops\n---\nx\n")
    no_desc = skill(skills, "no-desc", text="---\nname: no-desc\n---\nbody\n")
    skill(skills, "good", "a good skill")
    dup = skill(skills, "zz-dup", text="---\nname: good\ndescription: the same name\n---\nx\n")
    fake_llm.script({"text": "ok"})
    proc = vibe_run(home, user_home, work, "hi")
    out = result(proc)
    assert out["status"] == "completed"
    warnings = [line for line in proc.stderr.splitlines() if "skipped skill" in line]
    assert len(warnings) == 3, proc.stderr
    for path in (bad_yaml, no_desc, dup):
        assert sum(str(path) in w for w in warnings) == 1
    prompt = system(fake_llm)
    assert "- good: a good skill" in prompt and "bad-yaml" not in prompt
