"""The path permission boundary (issue 20, items 5, 8, 12): paths are placed where they resolve.

A table of (tool, path, verdict in default mode, with read_file/grep/edit allowed for `src/*`,
in plan mode), then extra roots, `outside_workdir = "deny"`, secrets, `.git` writes, NUL bytes,
session patterns, and a hypothesis check that "inside" means exactly "realpath is inside".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools._pathcheck import expand_braces, locate, roots_of
from tools.permissions import (
    PermissionPolicy,
    ToolPolicy,
    default_policy,
    evaluate,
    session_pattern,
)

DEFAULT = PermissionPolicy()
PLAN = PermissionPolicy(read_only=True)
SRC = PermissionPolicy(
    tools={
        **default_policy(),
        "edit": ToolPolicy("ask", allowlist=("src/*",)),
        "write_file": ToolPolicy("ask", allowlist=("src/*",)),
    }
)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    base = tmp_path_factory.mktemp("paths")
    root = base / "project"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "src" / "a.py").write_text("x\n")
    (root / ".env").write_text("KEY=1\n")
    (base / "secret.txt").write_text("s\n")
    (root / "src" / "out").symlink_to(base)  # a symlink inside src that leads out
    (root / "src" / "in").symlink_to(root / "src" / "pkg")
    (root / "link.txt").symlink_to(base / "secret.txt")
    return root


def check(tool, path, policy, cwd, rules=()):
    args = {"path": path} if tool != "write_file" else {"path": path, "content": "x"}
    return evaluate(tool, args, policy, cwd, rules)


# (tool, path, default, with src/* allowed, plan mode)
ROWS = [
    ("read_file", "src/a.py", "allow", "allow", "allow"),
    ("read_file", "./src/../src/a.py", "allow", "allow", "allow"),
    ("read_file", "src/in/x.py", "allow", "allow", "allow"),
    ("read_file", "src/out/secret.txt", "ask", "ask", "ask"),
    ("read_file", "src/../../secret.txt", "ask", "ask", "ask"),
    ("read_file", "../secret.txt", "ask", "ask", "ask"),
    ("read_file", "link.txt", "ask", "ask", "ask"),
    ("read_file", "/etc/passwd", "ask", "ask", "ask"),
    ("read_file", "~/.bashrc", "ask", "ask", "ask"),
    ("read_file", "~+/src/a.py", "allow", "allow", "allow"),
    ("read_file", "~+/../secret.txt", "ask", "ask", "ask"),
    ("read_file", "~-/x", "ask", "ask", "ask"),
    ("read_file", "/dev/fd/../../../etc/passwd", "ask", "ask", "ask"),
    ("read_file", "/proc/self/root/etc/passwd", "ask", "ask", "ask"),
    ("read_file", ".env", "ask", "ask", "ask"),
    ("read_file", "src/.env.production", "ask", "ask", "ask"),
    ("read_file", "src/.env.example", "allow", "allow", "allow"),
    ("read_file", "src/server.pem", "ask", "ask", "ask"),
    ("read_file", "src/id_rsa", "ask", "ask", "ask"),
    ("read_file", "src/id_ed25519.pub", "ask", "ask", "ask"),
    ("read_file", "~/.ssh/config", "ask", "ask", "ask"),
    ("read_file", "~/.aws/credentials", "ask", "ask", "ask"),
    ("read_file", "~/.netrc", "ask", "ask", "ask"),
    ("grep", "src", "allow", "allow", "allow"),
    ("grep", ".", "allow", "allow", "allow"),
    ("grep", "..", "ask", "ask", "ask"),
    ("grep", "src/out", "ask", "ask", "ask"),
    ("grep", ".env", "ask", "ask", "ask"),
    ("grep", "/", "ask", "ask", "ask"),
    ("edit", "src/a.py", "ask", "allow", "deny"),
    ("edit", "src/pkg/b.py", "ask", "allow", "deny"),
    ("edit", "src/../../x", "ask", "ask", "deny"),
    ("edit", "src/../README.md", "ask", "ask", "deny"),
    ("edit", "src/out/secret.txt", "ask", "ask", "deny"),
    ("edit", "src/in/c.py", "ask", "allow", "deny"),
    ("edit", "/etc/passwd", "ask", "ask", "deny"),
    ("edit", os.path.expanduser("~/x"), "ask", "ask", "deny"),
    ("edit", ".git/config", "ask", "ask", "deny"),
    ("edit", "src/../.git/hooks/pre-commit", "ask", "ask", "deny"),
    ("write_file", "src/new.py", "ask", "allow", "deny"),
    ("write_file", "src/.env", "ask", "ask", "deny"),
    ("write_file", "src/out/x", "ask", "ask", "deny"),
    ("write_file", ".git/config", "ask", "ask", "deny"),
    ("write_file", "/tmp/x", "ask", "ask", "deny"),
]


@pytest.mark.parametrize(("tool", "path", "default", "src", "plan"), ROWS)
def test_path_table(project, tool, path, default, src, plan):
    for policy, expected in ((DEFAULT, default), (SRC, src), (PLAN, plan)):
        verdict = check(tool, path, policy, project)
        assert verdict.action == expected, (tool, path, verdict.reason)
    assert check(tool, path, PermissionPolicy(auto_approve=True), project).action == "allow"


def test_outside_workdir_deny_wins_over_everything(project):
    deny = PermissionPolicy(
        outside_workdir="deny",
        auto_approve=True,
        tools={**default_policy(), "edit": ToolPolicy("always", allowlist=("*",))},
    )
    for path in ("../secret.txt", "src/out/secret.txt", "/etc/passwd", "~/.bashrc"):
        verdict = check("edit", path, deny, project, [("edit", "*")])
        assert verdict.action == "deny", path
        assert "outside_workdir = deny" in verdict.reason
    assert check("edit", "src/a.py", deny, project).action == "allow"


def test_allow_patterns_never_reach_outside(project):
    rules = [("edit", "*"), ("read_file", "*"), ("edit", "src/*")]
    for path in ("/etc/passwd", "../secret.txt", "src/../../secret.txt", "src/out/secret.txt"):
        assert check("edit", path, DEFAULT, project, rules).action == "ask", path
    always = PermissionPolicy(tools={**default_policy(), "edit": ToolPolicy("always")})
    assert check("edit", "/etc/passwd", always, project).action == "ask"
    assert check("edit", "src/a.py", always, project).action == "allow"


def test_extra_roots(project, tmp_path):
    other = tmp_path / "lib"
    (other / "pkg").mkdir(parents=True)
    policy = PermissionPolicy(extra_roots=(other,))
    assert check("read_file", str(other / "pkg" / "x.py"), policy, project).action == "allow"
    assert check("read_file", str(other / "pkg" / "x.py"), DEFAULT, project).action == "ask"
    assert check("read_file", str(other / ".." / "x"), policy, project).action == "ask"
    pattern = session_pattern("edit", {"path": str(other / "pkg" / "x.py")}, project, policy)
    assert pattern == f"{(other / 'pkg').resolve().as_posix()}/*"
    rules = [("edit", pattern)]
    assert check("edit", str(other / "pkg" / "y.py"), policy, project, rules).action == "allow"
    assert check("edit", "pkg/y.py", policy, project, rules).action == "ask"


def test_secrets_ask_even_when_always_unless_named(project):
    always = PermissionPolicy(tools={**default_policy(), "read_file": ToolPolicy("always")})
    assert check("read_file", ".env", always, project).action == "ask"
    assert "secrets" in check("read_file", ".env", always, project).reason
    named = PermissionPolicy(
        tools={**default_policy(), "read_file": ToolPolicy("ask", allowlist=(".env",))}
    )
    assert check("read_file", ".env", named, project).action == "allow"
    assert check("read_file", ".env", DEFAULT, project, [("read_file", "*")]).action == "ask"
    protected = PermissionPolicy(protected=(project / "src" / "a.py",))
    assert check("read_file", "src/a.py", protected, project).action == "ask"
    assert check("read_file", ".env", PermissionPolicy(auto_approve=True), project).action == (
        "allow"
    )


def test_git_writes_always_ask(project):
    edits = PermissionPolicy(
        auto_edits=True,
        tools={**default_policy(), "write_file": ToolPolicy("always", allowlist=(".git/*",))},
    )
    for path in (".git/config", ".git/hooks/post-checkout", "src/../.git/x"):
        verdict = check("write_file", path, edits, project)
        assert verdict.action == "ask", path
        assert ".git" in verdict.reason
    assert check("write_file", "src/x.py", edits, project).action == "allow"
    assert check("read_file", ".git/config", DEFAULT, project).action == "allow"


@pytest.mark.parametrize("path", ["a\x00b", "src/\x00", "\x00"])
def test_nul_bytes_deny(project, path):
    for tool in ("read_file", "grep", "edit", "write_file"):
        verdict = check(tool, path, DEFAULT, project)
        assert verdict.action == "deny"
        assert "NUL byte" in verdict.reason
    assert isinstance(session_pattern("edit", {"path": path}, project), str)


def test_garbage_arguments_never_raise(project):
    for value in (None, 12, ["a"], {"x": 1}, "", " ", "~nouser/x", "a" * 5000):
        verdict = evaluate("read_file", {"path": value}, DEFAULT, project)
        assert verdict.action in ("allow", "ask", "deny")
        assert isinstance(session_pattern("edit", {"path": value}, project), str)


def test_plan_mode_tools(project):
    assert evaluate("todo", {"todos": []}, PLAN, project).action == "allow"
    assert evaluate("web_fetch", {"url": "x"}, PLAN, project).action == "deny"
    assert (
        evaluate(
            "mcp_thing", {}, PermissionPolicy(read_only=True, auto_approve=True), project
        ).action
        == "deny"
    )
    extra = PermissionPolicy(read_only=True, read_only_tools=frozenset({"exit_plan_mode"}))
    assert evaluate("exit_plan_mode", {}, extra, project).action == "ask"


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("README.md", "README.md"),
        ("src/a.py", "src/*"),
        ("src/pkg/../a.py", "src/*"),
        ("./src/pkg/b.py", "src/pkg/*"),
        ("src/in/c.py", "src/pkg/*"),
        ("~+/src/a.py", "src/*"),
    ],
)
def test_session_pattern_for_paths(project, path, pattern):
    assert session_pattern("edit", {"path": path}, project) == pattern
    assert session_pattern("edit", {"path": "/etc/passwd"}, project) == "/etc/passwd"
    assert session_pattern("write_file", {"path": "x.py"}) == "x.py"
    assert session_pattern("write_file", {"path": "../x.py"}) == "../x.py"


def test_brace_expansion():
    assert sorted(expand_braces("{a,/etc/b}")) == ["/etc/b", "a"]
    assert sorted(expand_braces("x{1..3}")) == ["x1", "x3"]
    assert sorted(expand_braces(".{.,x}")) == ["..", ".x"]
    assert expand_braces("{a,b}" * 20) is None
    assert expand_braces("plain") == ["plain"]


# ---- hypothesis: a path is inside exactly when its realpath is inside --------------------

_SEGMENTS = st.sampled_from(["src", "pkg", "..", ".", "in", "out", "x", "a.py", "", "src/in"])


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_SEGMENTS, min_size=1, max_size=6), st.booleans())
def test_hypothesis_inside_iff_realpath_inside(project, segments, absolute):
    raw = "/".join(segments) or "."
    if absolute:
        raw = str(project) + "/" + raw
    root = Path(os.path.realpath(project))
    expected = Path(os.path.realpath(project / raw)).is_relative_to(root)
    where = locate(raw, project, roots_of(project))
    assert where.inside == expected, raw
    verdict = check("read_file", raw, DEFAULT, project)
    if not expected:
        assert verdict.action == "ask", raw
    rules = [("edit", "*"), ("edit", "src/*")]
    edit = check("edit", raw, DEFAULT, project, rules)
    assert (edit.action == "allow") == (expected and ".git" not in raw), (raw, edit.reason)
