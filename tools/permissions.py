"""The permission model: per-tool always/ask/never, allow/deny patterns, modes, bash analysis.

Precedence, strongest first: a denylist match and `never` deny; plan mode (`read_only`) denies
anything that may write; then paths outside the working directory and pipes into interpreters
ask; then `always`, allowlist and session patterns, accept-edits and the built-in read-only
commands allow; everything else asks. `auto_approve` turns every remaining ask into allow.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel

from tools._readonly import names, readonly_check
from tools.bash_analysis import SHELLS, SimpleCommand, analyze, strip_wrappers

Permission = Literal["always", "ask", "never"]
Action = Literal["allow", "ask", "deny"]
SessionRule = tuple[str, str]  # (tool name, pattern) the user allowed for this session

READ_TOOLS = frozenset({"read_file", "grep", "todo"})
EDIT_TOOLS = frozenset({"write_file", "edit"})
PATH_TOOLS = frozenset({"read_file", "grep", "write_file", "edit"})
INTERPRETERS = SHELLS | names(
    "python python2 python3 pypy pypy3 perl ruby node nodejs deno bun php lua luajit "
    "Rscript osascript pwsh powershell tclsh source . eval"
)
# Device files that are neither data to protect nor places to write to.
_DEVICES = names(
    "/dev/null /dev/stdin /dev/stdout /dev/stderr /dev/tty /dev/zero /dev/random /dev/urandom"
)


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
    """The policies of all tools plus the mode: plan (read_only), accept-edits, auto-approve."""

    tools: Mapping[str, ToolPolicy] = field(default_factory=default_policy)
    read_only: bool = False
    auto_edits: bool = False
    auto_approve: bool = False


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


def matches(pattern: str, text: str) -> bool:
    """fnmatch on the whole text; `cmd *` also matches `cmd` alone."""
    return fnmatchcase(text, pattern) or (pattern.endswith(" *") and text == pattern[:-2])


def evaluate(
    tool_name: str,
    args: BaseModel | Mapping[str, Any],
    policy: PermissionPolicy,
    cwd: Path,
    session_rules: Iterable[SessionRule] = (),
) -> Verdict:
    """Whether this call may run now (allow), needs a human (ask) or must not run (deny)."""
    values = args.model_dump() if isinstance(args, BaseModel) else dict(args)
    tool = policy.tools.get(tool_name) or default_policy().get(tool_name) or ToolPolicy("ask")
    allow = tool.allowlist + tuple(p for name, p in session_rules if name == tool_name)
    if tool_name == "bash":
        verdict = _bash(str(values.get("command") or ""), tool, allow, policy, cwd)
    else:
        verdict = _tool(tool_name, values, tool, allow, policy, cwd)
    if verdict.action == "ask" and policy.auto_approve:
        return Verdict("allow", f"auto-approved: {verdict.reason}")
    return verdict


def _tool(
    name: str,
    values: dict[str, Any],
    tool: ToolPolicy,
    allow: tuple[str, ...],
    policy: PermissionPolicy,
    cwd: Path,
) -> Verdict:
    targets: list[str] = []
    outside = None
    if name in PATH_TOOLS:
        raw = str(values.get("path") or ".")
        resolved = _resolve(cwd, raw)
        root = Path(os.path.realpath(cwd))
        targets = [raw, resolved.as_posix()]
        if resolved.is_relative_to(root):
            targets.append(resolved.relative_to(root).as_posix() or ".")
        else:
            outside = raw
    for pattern in tool.denylist:
        # Tools without a path only match the catch-all pattern `*`.
        if any(matches(pattern, t) for t in targets or [""]):
            subject = f"{name} {targets[0]}" if targets else name
            return Verdict("deny", f"{subject} matches the denylist pattern {pattern!r}")
    if tool.permission == "never":
        return Verdict("deny", f"the {name} tool is disabled (permission = never)")
    if policy.read_only and name not in READ_TOOLS:
        return Verdict("deny", f"plan mode is read-only: {name} is not allowed")
    allowed = any(matches(p, t) for p in allow for t in (targets or [""]))
    if outside is not None and not allowed:
        return Verdict("ask", f"{name} on a path outside the working directory: {outside}")
    if tool.permission == "always":
        return Verdict("allow", f"{name} is always allowed")
    if allowed:
        return Verdict("allow", f"{name} matches an allowed pattern")
    if policy.auto_edits and name in EDIT_TOOLS:
        return Verdict("allow", f"accept-edits mode allows {name} inside the working directory")
    return Verdict("ask", f"{name} needs approval")


def _bash(
    command: str, tool: ToolPolicy, allow: tuple[str, ...], policy: PermissionPolicy, cwd: Path
) -> Verdict:
    analysis = analyze(command)
    texts = [command.strip()]
    for cmd in analysis.commands:
        texts += [cmd.text, cmd.source, " ".join(strip_wrappers(cmd.words, privilege=True))]
    for pattern in tool.denylist:
        hit = next((t for t in texts if t and matches(pattern, t)), None)
        if hit is not None:
            return Verdict("deny", f"`{hit}` matches the denylist pattern {pattern!r}")
    if tool.permission == "never":
        return Verdict("deny", "the bash tool is disabled (permission = never)")
    if tool.permission == "always" and not policy.read_only:
        return Verdict("allow", "bash is always allowed")
    if analysis.error is not None:
        if policy.read_only:
            return Verdict("deny", f"plan mode is read-only and {analysis.error}")
        return Verdict("ask", analysis.error)
    homes = [Path(os.path.realpath(cwd))]  # every folder a `cd` may have moved to
    asks: list[str] = []
    for cmd in analysis.commands:
        kind, reason = _command(cmd, allow, policy.read_only, homes)
        if kind == "deny":
            return Verdict("deny", f"plan mode is read-only: {reason}")
        if kind == "ask":
            asks.append(reason)
    if asks:
        return Verdict("ask", asks[0])
    return Verdict(
        "allow", "read-only command" if len(analysis.commands) < 2 else "every command is read-only"
    )


def _command(
    cmd: SimpleCommand, allow: tuple[str, ...], read_only: bool, homes: list[Path]
) -> tuple[Action, str]:
    """('allow'|'ask'|'deny', reason) for one simple command; 'deny' only in plan mode."""
    if cmd.unwrapped:
        return "allow", ""
    refuse: Action = "deny" if read_only else "ask"
    shown = cmd.source or cmd.text
    words = strip_wrappers(cmd.words)
    bare = strip_wrappers(cmd.words, privilege=True)
    if cmd.piped and bare and os.path.basename(bare[0]) in INTERPRETERS:
        return refuse, f"pipes into an interpreter (`{shown}`)"
    writes = [
        r
        for r in cmd.redirects
        if r.writes and r.target not in _DEVICES and not (r.target or "").startswith("/dev/fd/")
    ]
    for redirect in cmd.redirects:
        if redirect.dynamic:
            return refuse, "a redirection uses variables or substitutions"
    if writes:
        return refuse, f"writes to a file (`{writes[0].op} {writes[0].target}`)"
    user_allowed = not read_only and any(
        matches(p, t) for p in allow for t in (cmd.text, " ".join(words))
    )
    reason, paths = readonly_check(words)
    if reason is None and cmd.assignments:
        reason = f"sets environment variables ({cmd.assignments[0]})"
    if reason is None and any(cmd.dynamic[:1]):
        reason = "the command name uses variables or substitutions"
    if reason is None and paths and any(cmd.dynamic[1:]):
        reason = f"arguments of `{words[0]}` use variables or substitutions"
    if reason is not None:
        if user_allowed:
            return "allow", ""
        return refuse, f"{reason} (`{shown}`)"
    paths += [r.target for r in cmd.redirects if r.op == "<" and r.target]
    for raw in paths:
        outside = _outside(raw, homes)
        if outside and not user_allowed:
            return "ask", f"reads outside the working directory: {raw} (`{shown}`)"
    if words and words[0] == "cd" and paths:
        homes.append(_resolve(homes[-1], paths[0]))
    return "allow", ""


def _outside(raw: str, homes: list[Path]) -> bool:
    if raw in _DEVICES or raw.startswith("/dev/fd/"):
        return False
    root = homes[0]
    return any(not _resolve(home, raw).is_relative_to(root) for home in homes)


def _resolve(cwd: Path, raw: str) -> Path:
    return Path(os.path.realpath(cwd / os.path.expanduser(raw)))


def session_pattern(tool_name: str, args: BaseModel | Mapping[str, Any]) -> str:
    """A pattern for "allow for this session": `git *` for a git command, `src/*` for an edit."""
    values = args.model_dump() if isinstance(args, BaseModel) else dict(args)
    if tool_name == "bash":
        command = str(values.get("command") or "").strip()
        analysis = analyze(command)
        if analysis.error is not None or not analysis.commands:
            return command
        candidates = [c for c in analysis.commands if not c.unwrapped and c.words]
        for cmd in candidates:
            words = strip_wrappers(cmd.words)
            if words and (
                readonly_check(words)[0] is not None or any(r.writes for r in cmd.redirects)
            ):
                return f"{words[0]} *"
        first = strip_wrappers(candidates[0].words) if candidates else ()
        return f"{first[0]} *" if first else command
    if tool_name in PATH_TOOLS:
        parent = PurePosixPath(str(values.get("path") or ".").replace("\\", "/")).parent
        return "*" if str(parent) in (".", "") else f"{parent}/*"
    return "*"
