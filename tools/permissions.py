"""The permission model: per-tool always/ask/never, allow/deny patterns, modes, bash analysis.

Precedence, strongest first (`evaluate` never raises; a path it cannot check is denied):
1. A NUL byte in a path or command denies. For bash, a command that cannot be parsed denies when
   the bash tool has a denylist, under auto-approve ("auto-approve does not run what it cannot
   check") and in plan mode; otherwise it asks.
2. A denylist match denies, in every mode. Paths are matched resolved (and as written); web_fetch
   URLs by their host (domain patterns, tools/_urlcheck.py; a URL without one denies); bash
   commands in every spelling (`/bin/rm`, wrappers such as env/sudo/nice/timeout/xargs/watch/
   busybox, git's global options, `find -exec`, `sh -c`, literal here-documents). With a bash
   denylist, a program that cannot be determined statically (`$X`, `$(echo rm)`, `r[m]`,
   `… | sh`) denies.
3. `never` denies.
4. Plan mode (`read_only`) denies every tool but `read_only_tools` (read_file, grep, todo) and
   every bash command that is not read-only.
5. A path outside the working folder and `extra_roots` (resolved: `..`, symlinks, `~`, `~+`,
   `/dev/fd/..`, brace forms and globs) is decided by `outside_workdir` ("ask" or "deny"),
   whatever `always`, the allowlist or the session rules say; bash path arguments of allowed
   commands that may write are checked too.
6. These ask whatever `always`, accept-edits or the allowlist say: write_file/edit and bash
   redirections into a `.git` folder; reading a secret file (`.env`, `*.pem`, `id_rsa*`,
   `~/.ssh/**`, `~/.aws/**`, `~/.netrc`, `protected`, …) unless an allow pattern names that file;
   a read-only git command in a repository whose own config can run programs.
7. `always`, an allowlist or session pattern (matched against the resolved path relative to its
   root, never the raw text), accept-edits (write_file/edit) and the built-in read-only commands
   allow. Everything else asks.
`auto_approve` turns every remaining ask into allow; denials stay denials.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel

from tools._arity import arity_pattern
from tools._bashcheck import bash_verdict
from tools._pathcheck import (
    PathError,
    explicit_match,
    in_git_dir,
    is_secret,
    locate,
    roots_of,
)
from tools._readonly import readonly_check
from tools._urlcheck import UrlError, host_matches, url_pattern, url_target
from tools.bash_analysis import BENIGN_WRAPPERS, analyze

Permission = Literal["always", "ask", "never"]
Action = Literal["allow", "ask", "deny"]
SessionRule = tuple[str, str]  # (tool name, pattern) the user allowed for this session

READ_TOOLS = frozenset({"read_file", "grep", "todo"})
EDIT_TOOLS = frozenset({"write_file", "edit"})
PATH_TOOLS = frozenset({"read_file", "grep", "write_file", "edit"})
READ_PATH_TOOLS = frozenset({"read_file", "grep"})


@dataclass(frozen=True)
class ToolPolicy:
    permission: Permission
    allowlist: tuple[str, ...] = ()
    denylist: tuple[str, ...] = ()


def default_policy() -> dict[str, ToolPolicy]:
    """read_file, grep and todo run freely; write_file, edit and bash ask."""
    return {
        "read_file": ToolPolicy("always"),
        "grep": ToolPolicy("always"),
        "todo": ToolPolicy("always"),
        "write_file": ToolPolicy("ask"),
        "edit": ToolPolicy("ask"),
        "bash": ToolPolicy("ask"),
    }


@dataclass(frozen=True)
class PermissionPolicy:
    """The policies of all tools plus the mode: plan (read_only), accept-edits, auto-approve.

    `extra_roots`: the `--add-dir` folders (inside them counts as inside); `outside_workdir`:
    what happens to any path outside the working folder and `extra_roots`; `protected`: more
    secret files (e.g. $VIBE_HOME/.env) that ask like `.env`; `read_only_tools`: the tools plan
    mode lets run.
    """

    tools: Mapping[str, ToolPolicy] = field(default_factory=default_policy)
    read_only: bool = False
    auto_edits: bool = False
    auto_approve: bool = False
    extra_roots: tuple[Path, ...] = ()
    outside_workdir: Literal["ask", "deny"] = "ask"
    protected: tuple[Path, ...] = ()
    read_only_tools: frozenset[str] = READ_TOOLS
    # Plan mode (issue 22): the one file write_file/edit may write without asking, wherever it
    # is ($VIBE_HOME/plans/<session id>.md); matched exactly, after resolving symlinks.
    plan_file: Path | None = None
    # Skills (issue 22): folders read_file/grep may read although outside the working folder
    # (the skills the user installed or trusted, so the model can read their bundled files).
    read_roots: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str


def tool_policies(settings: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, ToolPolicy]:
    """Defaults overlaid with `permission`/`allowlist`/`denylist` of each `[tools.NAME]` table."""
    policies = default_policy()
    for name, table in (settings or {}).items():
        base = policies.get(name, ToolPolicy("ask"))
        permission = table.get("permission", base.permission)
        if permission not in ("always", "ask", "never"):
            raise ValueError(
                f"tools.{name}.permission must be 'always', 'ask' or 'never', got {permission!r}"
            )
        policies[name] = ToolPolicy(
            permission=permission,
            allowlist=_patterns(table.get("allowlist", base.allowlist), f"tools.{name}.allowlist"),
            denylist=_patterns(table.get("denylist", base.denylist), f"tools.{name}.denylist"),
        )
    return policies


def _patterns(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of strings, got {value!r}")
    return tuple(value)


def evaluate(
    tool_name: str,
    args: BaseModel | Mapping[str, Any],
    policy: PermissionPolicy,
    cwd: Path,
    session_rules: Iterable[SessionRule] = (),
) -> Verdict:
    """Whether this call may run now (allow), needs a human (ask) or must not run (deny).

    Never raises: anything that cannot be checked is denied with the reason."""
    try:
        values = args.model_dump() if isinstance(args, BaseModel) else dict(args)
        tool = policy.tools.get(tool_name) or default_policy().get(tool_name) or ToolPolicy("ask")
        rules = tuple(p for name, p in session_rules if name == tool_name)
        allow = tuple(tool.allowlist) + rules
        if tool_name == "bash":
            verdict = bash_verdict(
                _text(values.get("command")), tool, allow, policy, Path(cwd), Verdict, matches
            )
        else:
            verdict = _tool(tool_name, values, tool, allow, policy, Path(cwd))
    except (PathError, UrlError) as exc:
        return Verdict("deny", str(exc))
    except Exception as exc:  # a checker bug must not end the run, nor let the call through
        return Verdict("deny", f"the permission check failed ({type(exc).__name__}: {exc})")
    if verdict.action == "ask" and policy.auto_approve:
        return Verdict("allow", f"auto-approved: {verdict.reason}")
    return verdict


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value or "")


def _tool(
    name: str,
    values: dict[str, Any],
    tool: ToolPolicy,
    allow: tuple[str, ...],
    policy: PermissionPolicy,
    cwd: Path,
) -> Verdict:
    where = None
    targets: list[str] = []
    raw = ""
    match, subject, kind = matches, name, "pattern"  # how allow patterns match and are named
    if name == "web_fetch":  # domain patterns on the URL's host (tools/_urlcheck.py)
        raw = url_target(_text(values.get("url")))
        targets, match, subject, kind = [raw], host_matches, f"{name} {raw}", "domain"
    elif name in PATH_TOOLS:
        raw = _text(values.get("path")) or "."
        roots = roots_of(cwd, policy.extra_roots)
        where = locate(raw, cwd, roots)
        targets = where.targets()
    for pattern in tool.denylist:
        # Tools without a path only match the catch-all pattern `*`.
        if any(match(pattern, t) for t in [*targets, raw] if t) or (
            not targets and match(pattern, "")
        ):
            what = f"{name} {raw}" if targets else name
            return Verdict("deny", f"{what} matches the denylist pattern {pattern!r}")
    if tool.permission == "never":
        return Verdict("deny", f"the {name} tool is disabled (permission = never)")
    if where is not None and name in EDIT_TOOLS and _is_plan_file(where.path, policy):
        return Verdict("allow", f"{name} writes the plan file")
    if where is not None and not where.inside and name in READ_PATH_TOOLS:  # skill files
        skill_root = next((r for r in policy.read_roots if where.path.is_relative_to(r)), None)
        if skill_root is not None and not is_secret(where.path, policy.protected):
            return Verdict("allow", f"{name} reads a skill's files in {skill_root}")
    if policy.read_only and name not in policy.read_only_tools:
        return Verdict("deny", f"plan mode is read-only: {name} is not allowed")
    patterns = [p for p in allow if any(match(p, t) for t in (targets or [""]))]
    if where is not None:
        if not where.inside:
            reason = f"{name} on a path outside the working directory: {raw}"
            if policy.outside_workdir == "deny":
                return Verdict("deny", f"{reason} (outside_workdir = deny)")
            return Verdict("ask", reason)
        if name in EDIT_TOOLS and in_git_dir(where.path):
            return Verdict("ask", f"{name} changes a file inside .git: {raw}")
        if is_secret(where.path, policy.protected) and not any(
            explicit_match(p, where.path, targets) for p in patterns
        ):
            return Verdict("ask", f"{name} on a file that may hold secrets: {raw}")
    if tool.permission == "always":
        return Verdict("allow", f"{name} is always allowed")
    if patterns:
        return Verdict("allow", f"{subject} matches an allowed {kind}")
    if policy.auto_edits and name in EDIT_TOOLS:
        return Verdict("allow", f"accept-edits mode allows {name} inside the working directory")
    return Verdict("ask", f"{subject} needs approval")


def _is_plan_file(path: Path, policy: PermissionPolicy) -> bool:
    # Only the file itself: a symlink planted at its name resolves elsewhere and does not match.
    plan = policy.plan_file
    return plan is not None and path == Path(os.path.realpath(plan.parent)) / plan.name


def session_pattern(
    tool_name: str,
    args: BaseModel | Mapping[str, Any],
    cwd: Path | None = None,
    policy: PermissionPolicy | None = None,
) -> str:
    """A pattern for "allow for this session": `git push *` for a push, `src/*` for an edit.

    Bash: by command arity, and only the exact command for rm, mv, curl, sudo and the like.
    Path tools: `DIR/*` of the resolved parent relative to its root, the exact relative name
    for a top-level file (never `*`), the exact absolute path outside. Pass `cwd` (and `policy`
    for its extra roots) so the path is resolved; without it the text is normalized."""
    try:
        values = args.model_dump() if isinstance(args, BaseModel) else dict(args)
        if tool_name == "bash":
            return _bash_pattern(_text(values.get("command")).strip())
        if tool_name in PATH_TOOLS:
            return _path_pattern(_text(values.get("path")) or ".", cwd, policy)
        if tool_name == "web_fetch":  # the URL's host (tools/_urlcheck.py, issue 24)
            return url_pattern(_text(values.get("url")))
    except Exception:  # never raise: an unusable pattern only means more questions
        return "\x00never"
    return "*"


def _path_pattern(raw: str, cwd: Path | None, policy: PermissionPolicy | None) -> str:
    if "\x00" in raw:
        return "\x00never"
    if cwd is None:
        norm = os.path.normpath(os.path.expanduser(raw)).replace("\\", "/")
        if norm.startswith(("/", "..")) or raw.startswith("~"):
            return _escape(norm)
        parent = str(PurePosixPath(norm).parent)
        return _escape(norm) if parent in (".", "") else f"{_escape(parent)}/*"
    extra = policy.extra_roots if policy is not None else ()
    where = locate(raw, cwd, roots_of(cwd, extra))
    if not where.inside or where.relative in (None, "."):
        return _escape(where.path.as_posix())
    parent = str(PurePosixPath(where.relative).parent)
    if where.root != roots_of(cwd)[0]:
        if parent == ".":
            return _escape(where.path.as_posix())
        return f"{_escape(where.path.parent.as_posix())}/*"
    return _escape(where.relative) if parent in (".", "") else f"{_escape(parent)}/*"


def _escape(text: str) -> str:
    """A file name as a pattern that matches only itself (`*` → `[*]`)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _bash_pattern(command: str) -> str:
    analysis = analyze(command)
    if analysis.error is not None or not analysis.commands:
        return command
    needing: list[tuple[str, ...]] = []
    for cmd in analysis.commands:
        if cmd.unwrapped or not cmd.words:
            if any(r.writes for r in cmd.redirects):
                return command
            continue
        benign = all(w in BENIGN_WRAPPERS for w in cmd.wrappers)
        words = cmd.program if benign and cmd.program else cmd.words
        if cmd.opaque or any(r.writes or r.dynamic for r in cmd.redirects):
            return command
        if readonly_check(words)[0] is not None or cmd.assignments:
            needing.append(words if benign else cmd.words)
    if len({w for w in needing}) != 1:
        return command
    return arity_pattern(needing[0]) or command


def matches(pattern: str, text: str) -> bool:
    """fnmatch on the whole text; `cmd *` also matches `cmd` alone."""
    return fnmatchcase(text, pattern) or (pattern.endswith(" *") and text == pattern[:-2])
