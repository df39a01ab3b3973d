"""What a git command runs beyond its subcommand, for the denylist.

`git -c core.pager='rm x' log`, `git -c credential.helper='!rm x' fetch`, `git config
alias.p push` then `git p`, an alias in ~/.gitconfig or the repository's config, `git-push`,
`git send-pack` (push's plumbing), `ext::` URLs, and `help.autocorrect` that turns `git pus`
into `git push`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tools._gitconfig import config_files, find_git_dir
from tools._gitopts import git_globals
from tools._readonly import names
from tools._shellquote import code_texts

_COMMANDISH = re.compile(
    r"(pager|editor|sshcommand|fsmonitor|external|textconv|askpass|program|cmd|command|helper|"
    r"hook|hookspath|proxy|gitproxy|driver|receivepack|uploadpack|smudge|clean|process|"
    r"browser|tool|path)$"
)
_SYNONYMS = {"send-pack": "push", "http-push": "push"}
KNOWN = names(
    """add am annotate apply archive bisect blame branch bundle cat-file check-attr check-ignore
    check-mailmap check-ref-format checkout checkout-index cherry cherry-pick citool clean clone
    column commit commit-graph commit-tree config count-objects credential daemon describe diff
    diff-files diff-index diff-tree difftool fast-export fast-import fetch fetch-pack
    filter-branch fmt-merge-msg for-each-ref for-each-repo format-patch fsck gc get-tar-commit-id
    grep gui hash-object help hook http-backend http-fetch http-push index-pack init instaweb
    interpret-trailers log ls-files ls-remote ls-tree mailinfo mailsplit maintenance merge
    merge-base merge-file merge-index merge-tree mktag mktree multi-pack-index mv name-rev notes
    pack-objects pack-refs patch-id prune prune-packed pull push range-diff read-tree rebase
    receive-pack reflog remote repack replace request-pull rerere reset restore rev-list
    rev-parse revert rm send-email send-pack shortlog show show-branch show-index show-ref
    sparse-checkout stage stash status stripspace submodule switch symbolic-ref tag
    unpack-file unpack-objects update-index update-ref update-server-info upload-archive
    upload-pack var verify-commit verify-pack verify-tag version whatchanged worktree
    write-tree subtree lfs scalar backfill replay"""
)


@dataclass
class GitExtra:
    texts: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    opaque: str | None = None


def commandish(key: str) -> bool:
    """A config key whose value git runs as a command."""
    return bool(_COMMANDISH.search(key.lower().rsplit(".", 1)[-1]))


def git_extras(name: str, args: tuple[str, ...], cwd: str | None) -> GitExtra:
    out = GitExtra()
    if name.startswith("git-"):  # `git-push`, `/usr/lib/git-core/git-push`
        args = (name[4:], *args)
        out.texts.append(" ".join(["git", *args]))
    folder = Path(cwd) if cwd else None
    git_dir: Path | None = None
    found = git_globals(args)
    for option, value in found.options:
        if option == "-c":
            _config_pair(*_split(value), out)
        elif option == "--config-env":
            key = value.split("=", 1)[0].lower()
            if key.startswith("alias.") or commandish(key):
                out.opaque = f"`git --config-env={value}` takes a command from a variable"
        elif option == "-C" and folder is not None and value:
            folder = folder / os.path.expanduser(value)
        elif option == "--git-dir" and folder is not None and value:
            git_dir = folder / os.path.expanduser(value)
    i = found.start
    if i >= len(args):
        return out
    sub, rest = args[i], list(args[i + 1 :])
    for arg in rest:
        if arg.startswith("ext::"):
            out.texts += code_texts(arg[5:].replace("% ", " ").replace("%%", "%"))
    if sub in _SYNONYMS or (sub == "subtree" and rest[:1] == ["push"]):
        out.texts.append(" ".join(["git", "push", *rest]))
    if sub == "config":
        positional = _config_positionals(rest)
        if len(positional) >= 2:
            _config_pair(positional[0], positional[1], out, alias_texts=True)
    elif sub not in KNOWN:
        _alias(sub, rest, folder, git_dir, out)
    return out


def _split(pair: str) -> tuple[str, str]:
    key, _, value = pair.partition("=")
    return key, value


def _config_pair(key: str, value: str, out: GitExtra, alias_texts: bool = False) -> None:
    lower = key.lower()
    if lower.startswith("alias."):
        if value.startswith("!"):
            out.scripts.append(value[1:])
        elif alias_texts:
            out.texts.append(f"git {value}")
        else:
            out.opaque = "`git -c alias.…` defines the command it runs"
    elif value.strip() and (commandish(lower) or value.startswith("!")):
        out.scripts.append(value.lstrip("!"))


def _config_positionals(rest: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("-f", "--file", "--blob", "--type", "--default", "--comment", "-t"):
            i += 2
            continue
        if not arg.startswith("-"):
            out.append(arg)
        i += 1
    if out and out[0] in ("set", "get", "unset", "add"):
        out = out[1:]
    return out


def _alias(
    sub: str, rest: list[str], folder: Path | None, git_dir: Path | None, out: GitExtra
) -> None:
    """An alias (`git p` → `git push`) from the user's or the repository's config."""
    aliases, autocorrect = _read_aliases(folder, git_dir)
    seen = set()
    while sub in aliases and sub not in seen:
        seen.add(sub)
        value = aliases[sub]
        if value.startswith("!"):
            out.scripts.append(" ".join([value[1:], *rest]))
            return
        words = value.split()
        out.texts.append(" ".join(["git", *words, *rest]))
        if not words or words[0] in KNOWN:
            return
        sub, rest = words[0], [*words[1:], *rest]
    if not seen and autocorrect:
        out.opaque = f"`git {sub}` is not a git command and help.autocorrect may run another"


def _read_aliases(folder: Path | None, git_dir: Path | None) -> tuple[dict[str, str], bool]:
    files = [Path(os.path.expanduser("~/.gitconfig"))]
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    files.append(Path(xdg) / "git" / "config")
    if folder is not None or git_dir is not None:
        found = git_dir or find_git_dir(folder or Path("."))
        if found is not None:
            files += config_files(found)
    aliases: dict[str, str] = {}
    autocorrect = False
    for file in files:
        try:
            text = file.read_text(encoding="utf-8", errors="replace")[: 1 << 20]
        except (OSError, ValueError):
            continue
        section = ""
        for line in text.splitlines():
            stripped = line.strip()
            header = re.match(r"\[\s*([^\]\s\"]+)", stripped)
            if header:
                section = header.group(1).lower()
                stripped = stripped.split("]", 1)[1].strip() if "]" in stripped else ""
            key, eq, value = stripped.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if not eq or not key:
                continue
            if section == "alias":
                aliases[key] = value
            elif section == "help" and key == "autocorrect":
                autocorrect = value.lower() not in ("0", "false", "no", "off", "never", "show")
    return aliases, autocorrect
