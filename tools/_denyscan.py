"""More of what a simple command runs, for the denylist: code, script files, config and variables.

`extras(...)` adds to what `_wrappers.resolve` found:
- texts the denylist is matched against, taken from code in other languages (`python -c`,
  `awk 'BEGIN{system("rm x")}'`, `sed 'e rm x'`, here-documents fed to an interpreter, script
  files such as `python x.py`): every word-start suffix of every line, with quotes and brackets
  turned into spaces. This is a heuristic: a denylist cannot see through a program that builds
  the command (`"r"+"m"`), and says so in the README.
- shell scripts it runs: script files (`bash x.sh`, `. x`, `source x`, `./x.sh`, `BASH_ENV=x`),
  git's `-c core.pager=…`, `credential.helper=!…`, `ext::` URLs and aliases (read from the
  user's and the repository's git config), `ssh -o ProxyCommand=…`, `trap`, `alias`,
  `complete -C`, `bind -x`, and variables that name a command (`PAGER=…`, `GIT_SSH_COMMAND=…`).
- why the program cannot be known: `PATH=…`, `LD_PRELOAD=…`, `GIT_CONFIG_*`, `hash -p`,
  `enable -f`, `xargs python`, a script file that does not exist yet or is read after `cd`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools._gitaliases import git_extras
from tools._readonly import names
from tools._shellquote import code_texts, static_word
from tools._wrappers import INTERPRETERS, SHELLS, Resolution

_MAX_FILE = 512 * 1024
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\+?=(.*)$", re.S)
CODE_RUNNERS = (INTERPRETERS - SHELLS) | frozenset(
    [
        "awk",
        "gawk",
        "mawk",
        "nawk",
        "sed",
        "gsed",
        "expect",
        "socat",
        "gdb",
        "wish",
        "jshell",
        "irb",
        "julia",
        "vim",
        "vi",
        "nvim",
        "ex",
        "less",
        "more",
    ]
)
# Programs that run what arrives on their stdin as shell commands.
STDIN_SHELLS = SHELLS | names("su script ssh at batch sudo doas busybox toybox")
# Variables whose value is a command some program runs.
RUN_VARS = frozenset(
    [
        "PAGER",
        "GIT_PAGER",
        "MANPAGER",
        "EDITOR",
        "VISUAL",
        "GIT_EDITOR",
        "GIT_SEQUENCE_EDITOR",
        "SUDO_EDITOR",
        "FCEDIT",
        "GIT_SSH_COMMAND",
        "GIT_SSH",
        "GIT_EXTERNAL_DIFF",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
        "PROMPT_COMMAND",
        "LESSOPEN",
        "LESSCLOSE",
        "GIT_PROXY_COMMAND",
        "BROWSER",
    ]
)
# Variables that change which program a name runs, or inject code into it.
LOADER_VARS = frozenset(
    [
        "PATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "GIT_EXEC_PATH",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_DIR",
        "GIT_TEMPLATE_DIR",
        "NODE_OPTIONS",
        "PERL5OPT",
        "RUBYOPT",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "IFS",
        "BASHOPTS",
        "SHELLOPTS",
        "HOME",
        "XDG_CONFIG_HOME",
        "GIT_CONFIG_NOSYSTEM",
    ]
)
_LOADER_PREFIXES = ("LD_", "DYLD_", "GIT_CONFIG_KEY", "GIT_CONFIG_VALUE", "BASH_FUNC_")
_DECLARES = names("export declare typeset local readonly")


@dataclass
class Context:
    """What the walk knows beyond one command: the folder scripts are read from."""

    cwd: str | None
    saw_cd: bool = False  # a `cd` ran earlier on the line: relative script paths are unknown
    in_file: int = 0  # > 0 while the commands of a script file are walked


@dataclass
class Extra:
    texts: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)  # shell code it runs
    file_scripts: list[str] = field(default_factory=list)  # texts of the script files it runs
    files: list[str] = field(default_factory=list)  # script files it runs (as written)
    opaque: str | None = None
    stdin_code: bool = False


def _read(raw: str, ctx: Context) -> tuple[str | None, str | None]:
    """(text of the script file, or why it cannot be read)."""
    if ctx.cwd is None:
        return None, None
    if ctx.saw_cd and not raw.startswith(("/", "~")):
        return None, f"runs the script file `{raw}` after `cd`, so which file cannot be known"
    path = Path(ctx.cwd) / os.path.expanduser(raw)
    try:
        if not path.is_file():
            return None, f"runs the script file `{raw}`, which does not exist yet"
        if path.stat().st_size > _MAX_FILE:
            return None, f"runs the script file `{raw}`, which is too large to check"
        return path.read_text(encoding="utf-8", errors="replace"), None
    except (OSError, ValueError):
        return None, f"runs the script file `{raw}`, which cannot be read"


def _script_file(raw: str, ctx: Context, out: Extra, shell: bool) -> None:
    text, why = _read(raw, ctx)
    if why is not None:
        out.opaque = out.opaque or why
    if text is None:
        return
    first = text.split("\n", 1)[0]
    runs_shell = shell and not (first.startswith("#!") and not any(s in first for s in SHELLS))
    if runs_shell:
        out.files.append(raw)
        out.file_scripts.append(text)
    else:
        out.texts += code_texts(text)


def _assignment(word: str, out: Extra, ctx: Context) -> None:
    match = _ASSIGN.match(word)
    if match is None:
        return
    name, raw = match.group(1), match.group(2)
    value = static_word(raw) if raw else ""
    if name in RUN_VARS:
        if value is None:
            out.opaque = out.opaque or f"`{name}` names a command built from variables"
        elif value.strip():
            out.scripts.append(value)
    elif name in ("BASH_ENV", "ENV"):
        if value is None:
            out.opaque = out.opaque or f"`{name}` names a file built from variables"
        elif value:
            _script_file(value, ctx, out, shell=True)
    elif ctx.in_file and name in ("PATH", "PYTHONHOME"):
        return  # a script file's own PATH (a virtualenv's `activate`): its commands are walked
    elif name in LOADER_VARS or name.startswith(_LOADER_PREFIXES):
        out.opaque = out.opaque or f"setting `{name}` changes which program runs"


def extras(
    found: Resolution,
    words: tuple[str, ...],
    dynamic: tuple[bool, ...],
    assignments: Any,
    redirects: Any,
    ctx: Context,
) -> Extra:
    """See the module docstring; never raises."""
    out = Extra()
    try:
        _extras(found, words, assignments, ctx, out)
        if found.stdin_code or out.stdin_code:  # `bash < x.sh`, `python < x.py`
            for redirect in redirects:
                if redirect.op == "<" and redirect.target and not redirect.dynamic:
                    shell = found.name in STDIN_SHELLS or not found.name
                    _script_file(redirect.target, ctx, out, shell=shell)
    except (OSError, ValueError, RecursionError, IndexError) as exc:
        out.opaque = out.opaque or f"the command could not be checked ({exc})"
    if found.name in ("cd", "pushd", "popd") or (not found.program and "cd" in words[:1]):
        ctx.saw_cd = True
    return out


def _extras(
    found: Resolution, words: tuple[str, ...], assignments: Any, ctx: Context, out: Extra
) -> None:
    program = found.program
    for word in [*assignments, *words[: len(words) - len(program)]]:
        _assignment(word, out, ctx)
    if not program:
        if set(found.wrappers) & {"sudo", "doas", "runuser", "busybox", "toybox", "sg", "script"}:
            out.stdin_code = True  # `sudo -s`, `busybox sh`: a shell reading stdin
        return
    name, args = found.name, list(program[1:])
    lower = name.lower()
    if lower != name:  # `RM x` runs rm where file names ignore case (macOS)
        out.texts.append(" ".join([lower, *args]))
    if "xargs" in found.wrappers and name in INTERPRETERS:
        out.opaque = f"`xargs` runs `{name}` with arguments read from its input"
    if name in _DECLARES:
        for arg in args:
            _assignment(arg, out, ctx)
    if "/" in program[0] and name not in SHELLS and not program[0].startswith(("/usr/", "/bin/")):
        path = Path(ctx.cwd or ".") / program[0]
        if ctx.cwd is not None and path.is_file():
            _script_file(program[0], ctx, out, shell=True)
    if name in CODE_RUNNERS:
        out.texts += code_texts(" ".join(args))
        _code_files(name, args, ctx, out)
    elif name in SHELLS:
        _shell_operand(args, ctx, out)
    elif name in ("source", "."):
        operands = [a for a in args if a != "--"]
        if operands and operands[0] not in ("/dev/stdin", "-", "/dev/fd/0", "/proc/self/fd/0"):
            _script_file(operands[0], ctx, out, shell=True)
    elif name in ("su", "script", "ssh", "at", "batch", "crontab"):
        out.stdin_code = True
        if name == "ssh":
            _ssh(args, out)
    elif name == "trap":
        operands = [a for a in args if a not in ("--", "-p", "-l")]
        if len(operands) >= 2 and operands[0] not in ("-", ""):
            out.scripts.append(operands[0])
    elif name == "alias":
        out.scripts += [a.split("=", 1)[1] for a in args if "=" in a]
    elif name in ("complete", "compgen"):
        out.scripts += [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-C"]
    elif name == "bind":
        out.scripts += [a.split(":", 1)[1] for a in args if ":" in a]
    elif name == "hash" and any(a.startswith("-") and "p" in a for a in args):
        out.opaque = "`hash -p` changes which program a name runs"
    elif name == "enable" and any(a.startswith("-") and "f" in a for a in args):
        out.opaque = "`enable -f` loads a builtin from a shared library"
    elif name == "git" or name.startswith("git-"):
        git = git_extras(name, tuple(args), ctx.cwd)
        out.texts += git.texts
        out.scripts += git.scripts
        out.opaque = out.opaque or git.opaque


def _code_files(name: str, args: list[str], ctx: Context, out: Extra) -> None:
    """The program file of an interpreter (`python x.py`) or `awk -f F`/`sed -f F`."""
    if name in INTERPRETERS:
        if any(a.startswith(("-c", "-e", "-E", "-m", "-r", "-p")) for a in args):
            return
        operands = [a for a in args if not a.startswith("-")]
        if operands:
            text, _ = _read(operands[0], ctx)
            if text is not None:
                out.texts += code_texts(text)
        return
    for index, arg in enumerate(args):
        value = None
        if arg in ("-f", "--file") and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--file="):
            value = arg.split("=", 1)[1]
        if value:
            text, _ = _read(value, ctx)
            if text is not None:
                out.texts += code_texts(text)


def _shell_operand(args: list[str], ctx: Context, out: Extra) -> None:
    """`bash x.sh`, `bash --rcfile x`: the script files a shell reads (not `-c`)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("--rcfile", "--init-file") and index + 1 < len(args):
            _script_file(args[index + 1], ctx, out, shell=True)
            index += 2
            continue
        if arg in ("--", "-"):
            index += 1
            break
        if not arg.startswith(("-", "+")):
            break
        if not arg.startswith("--") and "c" in arg[1:]:
            return  # `-c SCRIPT`: handled by _wrappers
        index += 2 if arg in ("-o", "+o", "-O", "+O") else 1
    if index < len(args):
        _script_file(args[index], ctx, out, shell=True)


def _ssh(args: list[str], out: Extra) -> None:
    """`ssh -o ProxyCommand=CMD`, `-oLocalCommand=CMD`: commands ssh runs here."""
    for index, arg in enumerate(args):
        value = None
        if arg == "-o" and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("-o") and len(arg) > 2:
            value = arg[2:]
        if value:
            parts = re.split(r"\s*=\s*|\s+", value, maxsplit=1)
            key, command = parts[0], parts[1] if len(parts) > 1 else ""
            if key.lower() in ("proxycommand", "localcommand", "knownhostscommand") and command:
                out.scripts.append(command)
