"""Which program a simple command really runs: through paths, wrappers and git's global options.

`resolve(words, dynamic)` peels `/bin/rm` → rm, `env -u X -C d -S '…'`, `time -p`, `nice`,
`nohup`, `timeout`, `stdbuf`, `setsid`, `flock FILE`, `strace`/`ltrace`, `watch`, `xargs`,
`busybox APPLET`, `sudo`/`doas`/`su -c`, `command`/`exec`/`builtin`, `chroot`, … and reports the
texts a denylist must be matched against (every suffix after a wrapper too, so an option we do not
know cannot hide the program), the shell scripts the command runs (`sh -c`, `watch`, `env -S`,
`eval`), other commands it runs (`find -exec`), and why the program cannot be known (`$X`, `r[m]`).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field

from tools._gitopts import git_globals

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "csh", "tcsh"})
INTERPRETERS = SHELLS | frozenset(
    [
        "python",
        "python2",
        "python3",
        "pypy",
        "pypy3",
        "perl",
        "ruby",
        "node",
        "nodejs",
        "deno",
        "bun",
        "php",
        "lua",
        "luajit",
        "Rscript",
        "osascript",
        "pwsh",
        "powershell",
        "tclsh",
    ]
)
_GLOB = re.compile(r"[*?\[\]{}]")


@dataclass(frozen=True)
class _Spec:
    short: str = ""  # short options that take a value
    long: frozenset[str] = frozenset()  # long options that take a value
    positionals: int = 0  # operands before the command (timeout's duration, chroot's root)


def _spec(short: str = "", long: str = "", positionals: int = 0) -> _Spec:
    return _Spec(short, frozenset(long.split()), positionals)


_WRAPPERS: dict[str, _Spec] = {
    "env": _spec("uCSPa", "unset chdir split-string argv0"),
    "time": _spec("fo", "format output"),
    "nice": _spec("n", "adjustment"),
    "nohup": _spec(),
    "timeout": _spec("sk", "signal kill-after", 1),
    "stdbuf": _spec("ioe", "input output error"),
    "setsid": _spec(),
    "flock": _spec("wEc", "timeout wait conflict-exit-code command", 1),
    "strace": _spec("abeEIoOpPsSuUX", "output trace signal status user env string-limit attach"),
    "ltrace": _spec("aADeFlnopsuwx", "output library"),
    "watch": _spec("nq", "interval equexit"),
    "xargs": _spec("adEILnPs", "arg-file delimiter max-args max-procs max-chars process-slot-var"),
    "busybox": _spec(),
    "toybox": _spec(),
    "sudo": _spec("CDghpRrtTUu", "chdir close-from group host prompt chroot role type user"),
    "doas": _spec("Cu"),
    "pkexec": _spec("", "user"),
    "runuser": _spec("ugGcs", "user group supp-group command shell"),
    "command": _spec(),
    "builtin": _spec(),
    "exec": _spec("a"),
    "chroot": _spec("", "userspec groups", 1),
    "ionice": _spec("cnpPu", "class classdata pid pgid uid"),
    "chrt": _spec("", "", 1),
    "taskset": _spec("c", "cpu-list", 1),
    "unbuffer": _spec(),
    "fakeroot": _spec("ifs"),
    "firejail": _spec(),
    "proxychains": _spec("f"),
    "proxychains4": _spec("f"),
    "torsocks": _spec("uapP"),
    "nsenter": _spec("tSGmuinpUCr"),
    "unshare": _spec(),
    "systemd-run": _spec("pEMuH", "property unit setenv description slice uid gid"),
    "catchsegv": _spec(),
    "valgrind": _spec(),
    "caffeinate": _spec("t"),
    "sg": _spec(),
    "newgrp": _spec(),
    "script": _spec("cEIOBTm", "command log-in log-out log-io log-timing"),
    "parallel": _spec(),
    "TIME": _spec(),  # the `time` keyword (see bash_analysis)
}
# Programs whose later words may be a command run elsewhere: the denylist sees their suffixes.
_SUFFIX_ONLY = frozenset(
    [
        "ssh",
        "su",
        "sg",
        "newgrp",
        "script",
        "parallel",
        "dbus-run-session",
        "xvfb-run",
        "gdb",
        "tmux",
        "screen",
        "sshpass",
        "bwrap",
        "dtach",
        "mpirun",
        "srun",
        "sem",
    ]
)
_SCRIPT_OPTIONS = {
    "env": ("S", "split-string"),
    "flock": ("c", "command"),
    "su": ("c", "command"),
    "runuser": ("c", "command"),
    "script": ("c", "command"),
}


@dataclass
class Resolution:
    program: tuple[str, ...] = ()  # the innermost command run, wrappers peeled (name as written)
    dynamic: tuple[bool, ...] = ()
    wrappers: tuple[str, ...] = ()
    deny_texts: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)  # literal shell scripts it runs
    runs: list[tuple[tuple[str, ...], tuple[bool, ...]]] = field(default_factory=list)
    opaque: str | None = None  # why the program cannot be determined
    stdin_code: bool = False  # a shell or interpreter that reads its program from stdin

    @property
    def name(self) -> str:
        return os.path.basename(self.program[0]) if self.program else ""


def base(word: str) -> str:
    return os.path.basename(word) or word


def _text(words: tuple[str, ...] | list[str]) -> str:
    return " ".join([base(words[0]), *words[1:]]) if words else ""


def _options(
    words: tuple[str, ...], start: int, spec: _Spec, script_opts: tuple[str, str] | None
) -> tuple[int, list[str]]:
    """Skip the options at `start`: (index of the first operand, values of script options)."""
    scripts: list[str] = []
    i = start
    while i < len(words):
        word = words[i]
        if word == "--":
            return i + 1, scripts
        if not word.startswith("-") or word == "-":
            return i, scripts
        i += 1
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            takes = any(opt.startswith(name) for opt in spec.long) if name else False
            if takes and not eq and i < len(words):
                value = words[i]
                i += 1
            if script_opts and name and script_opts[1].startswith(name) and (eq or takes):
                scripts.append(value)
            continue
        for pos, char in enumerate(word[1:], start=1):
            if char in spec.short:
                value = word[pos + 1 :]
                if not value and i < len(words):
                    value = words[i]
                    i += 1
                if script_opts and char == script_opts[0]:
                    scripts.append(value)
                break
    return i, scripts


def resolve(words: tuple[str, ...], dynamic: tuple[bool, ...]) -> Resolution:
    """What `words` runs; never raises."""
    out = Resolution()
    dynamic = tuple(dynamic) + (False,) * (len(words) - len(dynamic))
    i = 0
    wrappers: list[str] = []
    while i < len(words):
        if dynamic[i]:
            out.opaque = f"the program name `{words[i]}` uses variables or substitutions"
            break
        if (_GLOB.search(words[i]) and words[i] not in ("[", "[[")) or words[i].startswith("$"):
            out.opaque = f"the program name `{words[i]}` is a pattern or quoting the shell expands"
            break
        name = base(words[i])
        out.deny_texts.append(_text(words[i:]))
        if name in ("git", "busybox", "toybox") or name in _WRAPPERS or name in _SUFFIX_ONLY:
            for j in range(i + 1, len(words)):
                out.deny_texts.append(_text(words[j:]))
                if base(words[j]) == "git":
                    out.deny_texts += git_texts(words[j + 1 :])
        if name == "git":
            out.deny_texts += git_texts(words[i + 1 :])
            if any(w.casefold().startswith(("alias.", "-calias.")) for w in words[i + 1 :]):
                out.opaque = "`git -c alias.…` defines the command it runs"
        if name == "su":
            out.scripts += _scan_scripts(words[i + 1 :], _SCRIPT_OPTIONS[name])
        if name not in _WRAPPERS:
            break
        if name == "command" and i + 1 < len(words) and words[i + 1] in ("-v", "-V"):
            break
        wrappers.append(name)
        spec = _WRAPPERS[name]
        nxt, scripts = _options(words, i + 1, spec, _SCRIPT_OPTIONS.get(name))
        if name in ("env", "TIME"):
            while nxt < len(words) and (
                words[nxt] == "-" or ("=" in words[nxt] and not words[nxt].startswith("="))
            ):
                nxt += 1
        if scripts:
            out.scripts += [" ".join([scripts[0], *map(shlex.quote, words[nxt:])])]
            out.wrappers = tuple(wrappers)
            return out
        nxt += spec.positionals
        if name == "flock" and nxt < len(words) and words[nxt] in ("-c", "--command"):
            out.scripts.append(" ".join(words[nxt + 1 : nxt + 2]))
            out.wrappers = tuple(wrappers)
            return out
        if name == "watch" and not any(w in ("-x", "--exec") for w in words[i + 1 : nxt]):
            if any(dynamic[nxt:]):
                out.opaque = "`watch` runs a command built from variables"
            elif nxt < len(words):
                out.scripts.append(" ".join(words[nxt:]))
            out.wrappers = tuple(wrappers)
            return out
        if name == "xargs" and nxt >= len(words):
            words, dynamic, i = ("echo",), (False,), 0
            continue
        i = nxt
    out.wrappers = tuple(wrappers)
    out.program, out.dynamic = words[i:], dynamic[i:]
    if out.opaque is None and out.program:
        _program_specifics(out)
    return out


def _scan_scripts(args: tuple[str, ...], opts: tuple[str, str]) -> list[str]:
    out = []
    for index, arg in enumerate(args):
        if arg == f"-{opts[0]}" or (
            arg.startswith("-") and not arg.startswith("--") and arg.endswith(opts[0])
        ):
            out += list(args[index + 1 : index + 2])
        elif arg.startswith("--") and "=" in arg and opts[1].startswith(arg[2:].split("=")[0]):
            out.append(arg.split("=", 1)[1])
    return out


def _program_specifics(out: Resolution) -> None:
    """Shell `-c` scripts, `eval`, interpreters reading stdin, `find -exec` commands."""
    name, args, dyn = out.name, out.program[1:], out.dynamic[1:]
    if name in SHELLS:
        c_mode, i = False, 0
        while i < len(args):
            arg = args[i]
            if arg == "--" or arg == "-":
                i += 1
                break
            if not arg.startswith(("-", "+")):
                break
            i += 1
            if arg in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
                i += 1
            elif not arg.startswith("--") and "c" in arg[1:]:
                c_mode = True
        if i < len(args):
            if dyn[i]:
                out.opaque = f"`{name}` runs a script named by variables or substitutions"
            elif c_mode:
                out.scripts.append(args[i])
        elif c_mode:
            out.opaque = f"`{name} -c` without a script"
        else:
            out.stdin_code = True
    elif name == "eval":
        if args[:1] == ("--",):
            args, dyn = args[1:], dyn[1:]
        if any(dyn):
            out.opaque = "`eval` of variables or substitutions"
        elif args:
            out.scripts.append(" ".join(args))
    elif name in ("source", "."):
        if any(dyn[:1]):
            out.opaque = f"`{name}` of a file named by variables or substitutions"
        elif args and args[0] in ("/dev/stdin", "-", "/dev/fd/0", "/proc/self/fd/0"):
            out.stdin_code = True
    elif name in INTERPRETERS:
        operands = [a for a in args if not a.startswith("-")]
        if (
            (
                not operands
                and not any(a.startswith(("-c", "-e", "-E", "-m", "-r", "-p")) for a in args)
            )
            or args[:1] == ("-",)
            or operands[:1] == ["-"]
        ):
            out.stdin_code = True
    elif name == "find":
        out.runs += _find_execs(args, dyn)
        if "-delete" in args:  # deletes like `rm -rf ROOTS`
            first = next((i for i, a in enumerate(args) if a[:1] in ("-", "(", "!")), len(args))
            roots = list(args[:first])
            out.deny_texts.append(" ".join(["rm", "-rf", *(roots or ["."])]))


_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def _find_execs(
    args: tuple[str, ...], dyn: tuple[bool, ...]
) -> list[tuple[tuple[str, ...], tuple[bool, ...]]]:
    runs = []
    i = 0
    while i < len(args):
        if args[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            while j < len(args) and args[j] != ";" and not (args[j] == "+" and j > i + 1):
                j += 1
            start = i + 1
            # find execs `NAME=V` itself (and fails); read past it as a shell would, so a
            # denylist never misses what a slightly different spelling would run.
            while start < j and _ASSIGNMENT.match(args[start]):
                start += 1
            runs.append((args[start:j], dyn[start:j]))
            i = j
        i += 1
    return runs


def git_texts(args: tuple[str, ...]) -> list[str]:
    """`git SUBCOMMAND …` with the global options before the subcommand removed; for an
    option we do not know, both readings (with and without a value)."""
    found = git_globals(args)
    starts = (*found.alternates, found.start)
    return [_text(("git", *args[start:])) for start in starts]
