"""git's global options, the ones before the subcommand (`git -C dir -c k=v --no-pager log`):
one reading of them for every checker (the denylist's texts, git's config and aliases)."""

from __future__ import annotations

from dataclasses import dataclass

# git's global options that take the next word as their value (or `=VALUE`; `-c`/`-C` glued).
GIT_VALUE_OPTIONS = frozenset(
    [
        "-C",
        "-c",
        "--git-dir",
        "--work-tree",
        "--namespace",
        "--super-prefix",
        "--config-env",
        "--attr-source",
        "--list-cmds",
    ]
)
# `--exec-path` takes a value only as `--exec-path=DIR`.
_KNOWN = GIT_VALUE_OPTIONS | {"--exec-path"}


@dataclass(frozen=True)
class GitGlobals:
    options: tuple[tuple[str, str], ...]  # (option, value): "" for a flag; `-cK=V` is ("-c", "K=V")
    start: int  # where the subcommand is in the arguments (past their end: none)
    # Where it would be if an option we do not know (`--foo`, `-x`) took the next word as its value.
    alternates: tuple[int, ...]


def git_globals(args: tuple[str, ...] | list[str]) -> GitGlobals:
    """The global options at the start of `args` (git's arguments, without `git`)."""
    options: list[tuple[str, str]] = []
    alternates: list[int] = []
    i = 0
    while i < len(args) and args[i].startswith("-"):
        arg = args[i]
        option, eq, value = arg.partition("=")
        if option[:2] in ("-c", "-C") and len(option) > 2 and not option.startswith("--"):
            option, value, eq = arg[:2], arg[2:], "="  # glued: `-C.`, `-ccore.x=y`
        i += 1
        if option in GIT_VALUE_OPTIONS and not eq:
            value = args[i] if i < len(args) else ""
            i += 1
        elif option not in _KNOWN and (arg.startswith("--") or len(arg) <= 2) and i < len(args):
            alternates.append(i + 1)
        options.append((option, value))
    return GitGlobals(tuple(options), i, tuple(alternates))
