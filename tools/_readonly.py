"""Which simple commands only read: the built-in allowlist, with per-command argument checks.

`readonly_check(words)` returns why a command is not read-only (or None) and the path
arguments it reads, which the permission model then checks against the working directory.
"""

from __future__ import annotations


def names(text: str) -> frozenset[str]:
    """A set of command or flag names written as one space-separated string."""
    return frozenset(text.split())


# Commands whose arguments are never file paths.
_NO_PATHS = names(
    "echo printf pwd which type true false whoami id uname seq nproc basename dirname "
    "printenv tr sleep uptime free locale ps groups arch logname tty"
)
# Commands whose non-option arguments are files or folders they read.
_READS_PATHS = names(
    "ls cat head tail wc stat file du df tree realpath readlink nl od hexdump cut diff "
    "cmp comm md5sum sha1sum sha224sum sha256sum sha384sum sha512sum b2sum cksum column "
    "test [ strings sort uniq xxd grep egrep fgrep rg find cd jq git date hostname env command"
)
_PATTERN_FIRST = frozenset({"grep", "egrep", "fgrep", "rg", "jq"})
_FIND_ACTIONS = names("-exec -execdir -ok -okdir -delete -fprint -fprint0 -fprintf -fls")
_FORBIDDEN_FLAGS = {
    "sort": ("-o", "--output", "--compress-program", "--files0-from"),
    "wc": ("--files0-from",),
    "du": ("--files0-from",),
    "tree": ("-o", "-R"),
    "printf": ("-v",),
    "file": ("-C", "--compile", "-f", "--files-from"),
    "rg": ("--pre", "--hostname-bin"),
    "date": ("-s", "--set"),
    "hostname": ("-F", "--file", "-b", "--boot"),
}
# `hostname` only reads with these options.
_HOSTNAME_READS = names(
    "-a -A -d -f -i -I -s -y -n -v -h -V --alias --all-fqdns --domain --fqdn --long "
    "--ip-address --all-ip-addresses --short --yp --nis --verbose --help --version"
)
_GIT_READ = names(
    "status log diff show blame shortlog describe rev-parse rev-list ls-files ls-tree "
    "cat-file grep show-ref merge-base name-rev count-objects whatchanged version "
    "diff-tree diff-files diff-index for-each-ref var check-ignore check-attr cherry help"
)
_GIT_GLOBAL_FLAGS = names(
    "--no-pager -P --no-optional-locks --literal-pathspecs --no-replace-objects"
)
_GIT_PATH_OPTIONS = frozenset({"-C", "--git-dir", "--work-tree"})
_GIT_HELP_RUNS = ("-w", "--web", "-i", "--info", "-m", "--man")
_BRANCH_WRITES = names(
    "-d -D --delete -m -M --move -c -C --copy -f --force -u --set-upstream-to "
    "--unset-upstream --edit-description --track --no-track"
)
_BRANCH_LISTS = ("--list", "-l", "--contains", "--no-contains", "--merged", "--no-merged")
_TAG_WRITES = names("-d --delete -a --annotate -s --sign -f --force -m -F -u")
_CONFIG_WRITES = names(
    "--add --unset --unset-all --replace-all --rename-section --remove-section -e --edit "
    "set unset edit rename-section remove-section"
)

Check = tuple[str | None, list[str]]


def readonly_check(words: tuple[str, ...]) -> Check:
    """(why `words` may change something or None, the paths it reads)."""
    if not words:
        return None, []
    name, args = words[0], list(words[1:])
    if "/" in name:
        return f"`{name}` is run by path, not a known read-only command", []
    if name not in _NO_PATHS and name not in _READS_PATHS:
        return f"`{name}` is not a known read-only command", []
    for flag in _FORBIDDEN_FLAGS.get(name, ()):
        if any(_has_flag(a, flag) for a in _flags(args)):
            return f"`{name} {flag}` can write files, run programs or read unlisted files", []
    if name.endswith("sum") and any(_has_flag(a, "-c") or _has_flag(a, "--check") for a in args):
        return f"`{name} --check` reads the files a list names", []
    if name in _NO_PATHS:
        return None, []
    special = _SPECIAL.get(name)
    if special is not None:
        return special(args)
    positional = _positionals(args)
    if name in _PATTERN_FIRST and positional and not any(_pattern_given(name, a) for a in args):
        positional = positional[1:]
    if name == "jq":
        positional += _values(args, ("-L",))
    return None, positional + _option_paths(args) + _glued_paths(args)


def _flags(args: list[str]) -> list[str]:
    """The options before `--` (after it every word is an operand)."""
    return args[: args.index("--")] if "--" in args else args


def _pattern_given(name: str, arg: str) -> bool:
    """Whether `arg` gives grep/rg/jq its pattern or program, so the first operand is a file."""
    if name == "jq":
        return _has_flag(arg, "--from-file") or arg == "-f"
    long = ("--regexp", "--file")
    if any(_has_flag(arg, flag) for flag in long):
        return True
    return arg.startswith("-") and not arg.startswith("--") and ("e" in arg or "f" in arg)


def _values(args: list[str], flags: tuple[str, ...]) -> list[str]:
    """The values of short options that take one (`-L DIR`, `-LDIR`)."""
    out = []
    for index, arg in enumerate(args):
        for flag in flags:
            if arg == flag and index + 1 < len(args):
                out.append(args[index + 1])
            elif arg.startswith(flag) and len(arg) > len(flag) and not arg.startswith("--"):
                out.append(arg[len(flag) :])
    return out


def _glued_paths(args: list[str]) -> list[str]:
    """Values glued to a short option that look like paths (`-f/etc/x`, `-T/tmp`, `-O~/x`)."""
    out = []
    for arg in _flags(args):
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
            for index in range(2, len(arg)):
                nxt = arg[index + 1 : index + 2]
                if arg[index] in "/~" or (arg[index] == "." and (nxt.isalpha() or nxt in "/.")):
                    out.append(arg[index:])
                    break
    return out


def _has_flag(arg: str, flag: str) -> bool:
    """Whether `arg` is `flag` as the program parses it: GNU getopt_long and git accept any
    unambiguous prefix of a long option (`--outp=F` is `--output`), so every prefix counts."""
    if flag.startswith("--"):
        name = arg.split("=", 1)[0]
        return arg.startswith("--") and len(name) > 2 and flag.startswith(name)
    # Short flags may be clustered (`sort -uo out`) or glued to their value (`-oout`).
    return arg.startswith("-") and not arg.startswith("--") and flag[1] in arg[1:]


def _has_any(arg: str, flags: frozenset[str]) -> bool:
    return any(f.startswith("-") and _has_flag(arg, f) for f in flags)


def _positionals(args: list[str]) -> list[str]:
    out: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--":
            return out + args[index + 1 :]
        if not arg.startswith("-") or arg == "-":
            out.append(arg)
    return out


def _option_paths(args: list[str]) -> list[str]:
    """Values of `--opt=VALUE` that look like paths."""
    out = []
    for arg in args:
        if arg.startswith("-") and "=" in arg:
            value = arg.split("=", 1)[1]
            if "/" in value or value.startswith("~") or value == "..":
                out.append(value)
    return out


def _find(args: list[str]) -> Check:
    for arg in args:
        if arg in _FIND_ACTIONS:
            return f"`find {arg}` runs commands or changes files", []
    roots = []
    for arg in args:
        if arg.startswith("-") or arg in ("(", "!", ")"):
            break
        roots.append(arg)
    return None, roots or ["."]


def _uniq(args: list[str]) -> Check:
    positional = _positionals(args)
    if len(positional) > 1:
        return "`uniq INPUT OUTPUT` writes its output file", []
    return None, positional


def _xxd(args: list[str]) -> Check:
    positional = _positionals(args)
    if len(positional) > 1:
        return "`xxd INPUT OUTPUT` writes its output file", []
    return None, positional


def _date(args: list[str]) -> Check:
    paths: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        name, eq, value = arg.partition("=")
        if arg.startswith("--") and len(name) > 2:
            takes = any(f.startswith(name) for f in ("--file", "--reference", "--date"))
            if takes and not eq and index < len(args):
                value, index = args[index], index + 1
            if "--file".startswith(name) or "--reference".startswith(name):
                paths.append(value)
            continue
        if arg[:2] in ("-f", "-r", "-d"):
            value = arg[2:]
            if not value and index < len(args):
                value, index = args[index], index + 1
            if arg[:2] != "-d":
                paths.append(value)
            continue
        if not arg.startswith(("-", "+")):
            return "`date` with an argument may set the clock", []
    return None, paths


def _hostname(args: list[str]) -> Check:
    if _positionals(args):
        return "`hostname NAME` sets the host name", []
    for arg in args:
        if arg not in _HOSTNAME_READS:
            return f"`hostname {arg}` may set the host name", []
    return None, []


def _env(args: list[str]) -> Check:
    if args:
        return "`env` with arguments runs a command", []
    return None, []


def _command(args: list[str]) -> Check:
    if args and args[0] in ("-v", "-V"):
        return None, []
    return "`command` runs another command", []


def _cd(args: list[str]) -> Check:
    positional = _positionals(args)
    if not positional:
        return None, ["~"]
    if positional[0] == "-":
        return "`cd -` goes to an unknown folder", []
    return None, positional[:1]


def _git(args: list[str]) -> Check:
    paths: list[str] = []
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        option, _, value = flag.partition("=")
        if option in _GIT_PATH_OPTIONS:
            if not value:
                if not args:
                    return f"`git {flag}` needs a value", []
                value = args.pop(0)
            paths.append(value)
        elif flag not in _GIT_GLOBAL_FLAGS:
            return f"`git {flag}` can change git's behaviour", []
    if not args:
        return None, paths
    sub, rest = args[0], args[1:]
    if any(_has_flag(a, "--output") for a in rest):
        return f"`git {sub} --output` writes a file", []
    if sub == "grep" and any(
        _has_flag(a, "-O") or _has_flag(a, "--open-files-in-pager") for a in rest
    ):
        return "`git grep -O` runs a pager program", []
    if sub == "help" and any(_has_flag(a, f) for a in rest for f in _GIT_HELP_RUNS):
        return "`git help` with these options starts a viewer program", []
    if sub in ("diff", "grep") and any(_has_flag(a, "--no-index") for a in rest):
        paths += _positionals(rest)
    for word in _positionals(rest):
        if "/" in word or word.startswith(("~", ".")):
            paths.append(word)
        if ":" in word and not word.startswith(":"):  # `HEAD:.env`, `main:~/x`
            tail = word.split(":", 1)[1]
            if tail and "://" not in word:
                paths.append(tail)
    paths += _option_paths(rest) + _glued_paths(rest)
    reason = _git_subcommand(sub, rest)
    return reason, paths


def _git_subcommand(sub: str, rest: list[str]) -> str | None:
    if sub in _GIT_READ:
        return None
    positional = _positionals(rest)
    if sub == "branch":
        if any(_has_any(a, _BRANCH_WRITES) for a in rest):
            return "`git branch` with these options changes branches"
        listing = any(a.startswith(_BRANCH_LISTS) for a in rest)
        return None if listing or not positional else "`git branch NAME` creates a branch"
    if sub == "tag":
        if any(_has_any(a, _TAG_WRITES) for a in rest):
            return "`git tag` with these options changes tags"
        listing = any(a in ("-l", "--list") for a in rest)
        return None if listing or not positional else "`git tag NAME` creates a tag"
    if sub == "remote":
        return (
            None
            if not positional or positional[0] in ("show", "get-url")
            else ("`git remote` with a subcommand can change remotes")
        )
    if sub == "config":
        if any(a in _CONFIG_WRITES or _has_any(a, _CONFIG_WRITES) for a in rest):
            return "`git config` with these arguments changes configuration"
        if positional and positional[0] in ("get", "list"):
            return None
        return None if len(positional) <= 1 else "`git config KEY VALUE` changes configuration"
    read_subs = {
        "stash": ("list", "show"),
        "worktree": ("list",),
        "submodule": ("status",),
        "reflog": ("show",),
        "notes": ("list", "show"),
    }
    if sub in read_subs:
        if sub == "reflog" and not positional:
            return None
        if positional and positional[0] in read_subs[sub]:
            return None
    return f"`git {sub}` can change the repository or talk to a remote"


_SPECIAL = {
    "find": _find,
    "uniq": _uniq,
    "xxd": _xxd,
    "date": _date,
    "hostname": _hostname,
    "env": _env,
    "cd": _cd,
    "command": _command,
    "git": _git,
}
