"""Skills without the agent: front matter parsing and validation, the search order, `/name
args` expansion, `allowed-tools` as turn rules; the lazy AGENTS.md of subfolders; the plan file
permission (exactly that file, no symlink planted at its name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.permissions import PermissionPolicy, evaluate
from vibe.agent.nested_rules import NestedRules
from vibe.skills import (
    SkillError,
    SkillSet,
    TurnRules,
    expand,
    load_skills,
    parse_skill,
    tool_rules,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_parse_all_fields(tmp_path):
    path = write(
        tmp_path / "s" / "SKILL.md",
        "---\nname: deploy\ndescription: >\n  Deploy the app\n  to staging.\nlicense: MIT\n"
        "compatibility: needs kubectl\nuser-invocable: false\ndisable-model-invocation: true\n"
        "allowed-tools: Bash(kubectl get:*) Read\n---\n\nSteps.\n",
    )
    skill = parse_skill(path)
    assert (skill.name, skill.description, skill.license) == (
        "deploy",
        "Deploy the app to staging.",
        "MIT",
    )
    assert skill.compatibility == "needs kubectl" and skill.body == "Steps.\n"
    assert not skill.user_invocable and not skill.model_invocable
    assert skill.allowed_tools == ("Bash(kubectl get:*)", "Read")
    assert tool_rules(skill.allowed_tools) == (("bash", "kubectl get *"), ("read_file", "*"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("no front matter\n", "no YAML front matter"),
        ("---\nname: x\n", "not closed"),
        ("---\nname: [x\n---\n", "invalid YAML"),
        ("---\n- a\n---\n", "mapping"),
        ("---\ndescription: d\n---\n", "`name` is missing"),
        ("---\nname: Bad Name\ndescription: d\n---\n", "lowercase"),
        ("---\nname: x\n---\n", "`description` is missing"),
        ("---\nname: x\ndescription: d\nuser-invocable: maybe\n---\n", "true or false"),
    ],
)
def test_broken_front_matter(tmp_path, text, problem):
    with pytest.raises(SkillError, match=problem):
        parse_skill(write(tmp_path / "SKILL.md", text))


def test_search_order_and_duplicates(tmp_path):
    home, user, work, extra = (tmp_path / n for n in ("home", "user", "work", "extra"))
    (work / ".git").mkdir(parents=True)
    for folder, desc in (
        (user / ".agents/skills", "agents"),
        (home / "skills", "home"),
        (work / ".agents/skills", "project"),
        (extra, "paths"),
    ):
        write(folder / "x" / "SKILL.md", f"---\nname: x\ndescription: {desc}\n---\n")
    write(home / "skills" / "y" / "SKILL.md", "---\nname: x\ndescription: dup\n---\n")
    found = load_skills(work, home, skill_paths=[str(extra)], trusted=True, user_home=user)
    assert found.get("x").description == "paths"
    assert len(found.warnings) == 1 and "y/SKILL.md" in found.warnings[0]
    found = load_skills(work, home, trusted=True, user_home=user)
    assert found.get("x").description == "project"
    found = load_skills(work, home, trusted=False, user_home=user)
    assert found.get("x").description == "home"


def test_expand_and_turn_rules(tmp_path):
    skill = parse_skill(
        write(
            tmp_path / "n" / "SKILL.md",
            "---\nname: notes\ndescription: d\nallowed-tools: [Write]\n---\nBody for $ARGUMENTS\n",
        )
    )
    hidden = parse_skill(
        write(
            tmp_path / "h" / "SKILL.md",
            "---\nname: hidden\ndescription: d\nuser-invocable: false\n---\nB\n",
        )
    )
    skills = SkillSet({"notes": skill, "hidden": hidden})
    inv = expand("/notes v2 final", skills)
    assert inv is not None and inv.arguments == "v2 final"
    assert "Body for v2 final" in inv.prompt and inv.rules == (("write_file", "*"),)
    assert expand("/hidden x", skills) is None and expand("notes", skills) is None
    rules = [("bash", "git *")]
    turn = TurnRules(rules)
    turn.add(inv.rules)
    rules.append(("write_file", "*"))  # the user also allowed it for the session
    turn.end()
    assert rules == [("bash", "git *"), ("write_file", "*")]


def test_nested_rules_once_and_only_below_cwd(tmp_path):
    work = tmp_path / "w"
    write(work / "AGENTS.md", "top")
    write(work / "a" / "AGENTS.md", "A rules")
    write(work / "a" / "b" / "AGENTS.md", "B rules")
    write(work / "a" / "b" / "f.py", "x")
    write(tmp_path / "AGENTS.md", "outside")
    rules = NestedRules(work)
    args = json.dumps({"path": "a/b/f.py"})
    first = rules.annotate("read_file", args, "ok", "content")
    assert first.index("A rules") < first.index("B rules") and "top" not in first
    assert rules.annotate("edit", args, "ok", "content") == "content"
    assert rules.annotate("read_file", json.dumps({"path": "../AGENTS.md"}), "ok", "c") == "c"
    assert NestedRules(work).annotate("read_file", args, "denied", "no") == "no"
    assert NestedRules(work).annotate("bash", args, "ok", "out") == "out"


def test_plan_file_is_the_only_write_in_plan_mode(tmp_path):
    work, plans = tmp_path / "work", tmp_path / "home" / "plans"
    work.mkdir()
    plans.mkdir(parents=True)
    plan = plans / "s1.md"
    policy = PermissionPolicy(read_only=True, plan_file=plan)
    assert (
        evaluate("write_file", {"path": str(plan), "content": "x"}, policy, work).action == "allow"
    )
    assert (
        evaluate(
            "edit", {"path": str(plan), "old_string": "a", "new_string": "b"}, policy, work
        ).action
        == "allow"
    )
    for other in (plans / "s2.md", work / "f.py"):
        verdict = evaluate("write_file", {"path": str(other), "content": "x"}, policy, work)
        assert verdict.action == "deny"
    (tmp_path / "victim").write_text("keep")
    plan.symlink_to(tmp_path / "victim")  # a symlink at the plan's name does not count
    assert (
        evaluate("write_file", {"path": str(plan), "content": "x"}, policy, work).action != "allow"
    )
    without = PermissionPolicy(read_only=True)
    assert (
        evaluate("write_file", {"path": str(plans / "x.md"), "content": "x"}, without, work).action
        == "deny"
    )
