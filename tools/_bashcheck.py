"""The bash half of the permission model: one verdict for a whole command line.

Order, strongest first: a NUL byte denies; a command that cannot be parsed denies when the bash
tool has a denylist, under auto-approve and in plan mode, and asks otherwise; a denylist match
(on every spelling: `/bin/rm`, wrappers, git's global options, `find -exec`, `sh -c`, here-docs)
denies; with a denylist, a program that cannot be determined (`$X`, `r[m]`, `… | sh`) denies;
`never` denies; plan mode denies anything not read-only; a path outside the working folder and
the extra roots is decided by `outside_workdir`; writes into `.git/`, reads of secret files and
read-only git commands in a repository whose config can run programs ask; then `always`, the
allow patterns and the built-in read-only commands allow; everything else asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tools._denymatch import deny_reason
from tools._gitconfig import repo_dangers
from tools._gitopts import git_globals
from tools._pathcheck import (
    PathError,
    candidates,
    explicit_match,
    in_git_dir,
    is_device,
    is_secret,
    locate,
    path_words,
    real,
    roots_of,
)
from tools._readonly import readonly_check
from tools._treescan import Recursion, recursion, scan
from tools.bash_analysis import BENIGN_WRAPPERS, SimpleCommand, analyze

if TYPE_CHECKING:
    from tools.permissions import PermissionPolicy, ToolPolicy, Verdict

AUTO_PARSE = "could not analyse the command; auto-approve does not run what it cannot check"


@dataclass
class _Findings:
    deny: list[str] = field(default_factory=list)  # plan mode
    outside: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)  # asks even under `always`
    soft: list[str] = field(default_factory=list)  # asks unless `always`


@dataclass
class _Context:
    allow: tuple[str, ...]
    exact: bool  # an allow pattern without wildcards is the whole command line
    read_only: bool
    roots: tuple[Path, ...]
    protected: tuple[Path, ...]
    homes: list[Path]  # every folder a `cd` may have moved to
    found: _Findings = field(default_factory=_Findings)


def bash_verdict(
    command: str,
    tool: ToolPolicy,
    allow: tuple[str, ...],
    policy: PermissionPolicy,
    cwd: Path,
    verdict: Callable[[str, str], Verdict],
    matches: Callable[[str, str], bool],
) -> Verdict:
    analysis = analyze(command, str(cwd))
    if analysis.error is not None:
        if "NUL byte" in analysis.error:
            return verdict("deny", analysis.error)
        if tool.denylist:
            return verdict(
                "deny", f"{analysis.error}; with a bash denylist, what cannot be checked is denied"
            )
        if tool.permission == "never":
            return verdict("deny", "the bash tool is disabled (permission = never)")
        if policy.auto_approve:
            return verdict("deny", f"{AUTO_PARSE} ({analysis.error})")
        if policy.read_only:
            return verdict("deny", f"plan mode is read-only and {analysis.error}")
        return verdict("ask", analysis.error)
    whole = command.strip()
    denied = deny_reason(command, analysis, tool.denylist, matches)
    if denied is not None:
        return verdict("deny", denied)
    if tool.permission == "never":
        return verdict("deny", "the bash tool is disabled (permission = never)")
    exact = any(p == whole for p in allow)
    ctx = _Context(
        allow=allow,
        exact=exact and not policy.read_only,
        read_only=policy.read_only,
        roots=roots_of(cwd, policy.extra_roots),
        protected=tuple(policy.protected),
        homes=[real(cwd)],
    )
    for cmd in analysis.commands:
        _command(cmd, ctx, matches)
    found = ctx.found
    if found.deny:
        return verdict("deny", f"plan mode is read-only: {found.deny[0]}")
    if found.outside:
        if policy.outside_workdir == "deny":
            return verdict("deny", f"{found.outside[0]} (outside_workdir = deny)")
        return verdict("ask", found.outside[0])
    if found.forced:
        return verdict("ask", found.forced[0])
    if found.soft and not (tool.permission == "always" and not policy.read_only):
        return verdict("ask", found.soft[0])
    if found.soft:
        return verdict("allow", "bash is always allowed")
    many = len(analysis.commands) > 1
    return verdict("allow", "every command is read-only" if many else "read-only command")


def _refuse(ctx: _Context, reason: str) -> None:
    (ctx.found.deny if ctx.read_only else ctx.found.soft).append(reason)


def _command(cmd: SimpleCommand, ctx: _Context, matches: Callable[[str, str], bool]) -> None:
    shown = cmd.source or cmd.text
    benign = all(w in BENIGN_WRAPPERS for w in cmd.wrappers)
    words = cmd.program if benign and cmd.program else cmd.words
    patterns = [
        p
        for p in ctx.allow
        if not ctx.read_only and any(matches(p, t) for t in (cmd.text, " ".join(words)) if t)
    ]
    allowed = ctx.exact or bool(patterns)
    if cmd.opaque:
        _refuse(ctx, f"the program could not be determined: {cmd.opaque} (`{shown}`)")
    _redirects(cmd, ctx, allowed, patterns)
    if cmd.unwrapped or not cmd.words:
        return
    reason, paths = readonly_check(words) if words else (None, [])
    if reason is None and cmd.assignments:
        reason = f"sets environment variables ({cmd.assignments[0]})"
    if reason is None and paths and any(cmd.dynamic[1:]):
        reason = f"arguments of `{words[0]}` use variables or substitutions"
    if reason is None and words[0] == "git":
        reason = _git_config(words, ctx)
    if reason is not None:
        if not allowed:
            _refuse(ctx, f"{reason} (`{shown}`)")
        elif ctx.read_only:
            return
        _writer_paths(cmd, ctx, patterns, shown)
        return
    for raw in paths:
        _check_path(raw, ctx, patterns, shown, reads=True)
    how = recursion(words)
    if how is not None:
        _recursive(paths, how, ctx, shown)
    if words[0] == "cd" and paths:
        try:
            ctx.homes.append(locate(paths[0], ctx.homes[-1], ctx.roots).path)
        except PathError:
            pass


def _recursive(paths: list[str], how: Recursion, ctx: _Context, shown: str) -> None:
    """A recursive read of folders: the secret files inside and links it follows out."""
    for raw in paths or ["."]:
        try:
            where = locate(raw, ctx.homes[-1], ctx.roots)
        except PathError:
            continue
        if where.inside and where.path.is_dir():
            found = scan(where.path, how, ctx.roots, ctx.protected)
            if found is not None:
                kind, why = found
                (ctx.found.outside if kind == "outside" else ctx.found.forced).append(
                    f"{why} (`{shown}`)"
                )
                return


def _redirects(cmd: SimpleCommand, ctx: _Context, allowed: bool, patterns: list[str]) -> None:
    shown = cmd.source or cmd.text
    for redirect in cmd.redirects:
        if redirect.dynamic and redirect.target is not None:
            _refuse(ctx, f"a redirection uses variables or substitutions (`{shown}`)")
            continue
        target = redirect.target
        if target is None or is_device(target):
            continue
        if redirect.writes:
            if not ctx.exact:
                _refuse(ctx, f"writes to a file (`{redirect.op} {target}`)")
            _check_path(target, ctx, patterns, shown, reads=False, git_guard=True)
        elif redirect.op in ("<", "<>", "<&"):
            _check_path(target, ctx, patterns, shown, reads=True)


def _writer_paths(cmd: SimpleCommand, ctx: _Context, patterns: list[str], shown: str) -> None:
    """Path arguments of a command that may write, allowed by a pattern or `always`: every
    operand, bare names too (`cp x link` writes through a symlink that leads out)."""
    words = cmd.program or cmd.words
    offset = len(cmd.words) - len(words)  # `cmd.dynamic` is per word of `cmd.words`
    for index, word in enumerate(words[1:], start=1):
        message = words[index - 1] in ("-m", "--message", "--title", "--body")
        if _dyn(cmd, index + offset) and not message:
            ctx.found.forced.append(
                f"the path `{word}` uses variables or substitutions and cannot be checked "
                f"(`{shown}`)"
            )
    is_git = bool(words) and words[0] == "git"
    static = [w for i, w in enumerate(words[1:], 1) if not _dyn(cmd, i + offset)]
    bare = [w for w in static if not w.startswith("-") and w not in path_words([w])]
    for raw in path_words(static) + bare:
        _check_path(raw, ctx, patterns, shown, reads=False, git_guard=not is_git)


def _dyn(cmd: SimpleCommand, index: int) -> bool:
    return index < len(cmd.dynamic) and cmd.dynamic[index]


def _check_path(
    raw: str,
    ctx: _Context,
    patterns: list[str],
    shown: str,
    reads: bool,
    git_guard: bool = False,
) -> None:
    if is_device(raw):
        return
    for home in ctx.homes:
        for form in candidates(raw, home):
            try:
                where = locate(form, home, ctx.roots)
            except PathError as exc:
                ctx.found.outside.append(str(exc))
                return
            if not where.inside:
                verb = "reads" if reads else "uses a path"
                ctx.found.outside.append(f"{verb} outside the working directory: {raw} (`{shown}`)")
                return
            if is_secret(where.path, ctx.protected) and not any(
                explicit_match(p, where.path, [shown, raw]) or where.path.name in p
                for p in patterns
            ):
                ctx.found.forced.append(f"reads a file that may hold secrets: {raw} (`{shown}`)")
                return
            if git_guard and in_git_dir(where.path):
                ctx.found.forced.append(f"changes files inside .git: {raw} (`{shown}`)")
                return


def _git_config(words: tuple[str, ...], ctx: _Context) -> str | None:
    """Why a read-only git command is not read-only here: its repository's config runs
    programs (core.fsmonitor, diff.external, textconv, filters, …)."""
    folder, git_dir = ctx.homes[-1], None
    for option, value in git_globals(words[1:]).options:  # git applies them in order
        try:
            if option == "-C":
                folder = locate(value, folder, ctx.roots).path
            elif option == "--git-dir":
                git_dir = locate(value, folder, ctx.roots).path
        except PathError:
            return "a git option holds a NUL byte"
    dangers = repo_dangers(folder, git_dir)
    if dangers:
        return f"the repository's git config sets {dangers[0]}, which git may run"
    return None
