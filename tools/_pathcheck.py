"""Where a path really points: resolved (symlinks followed) and placed against the allowed roots.

Everything here works on the resolved path, never on the text as written: `src/../../x`, a
symlink that leads out, `~+`, `/dev/fd/../../etc/x` and `{a,/etc/b}` all count for what they
reach. `PathError` is raised for a path that cannot be checked at all (a NUL byte).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

# Device files that are neither data to protect nor places to write to.
DEVICES = frozenset(
    [
        "/dev/null",
        "/dev/stdin",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/tty",
        "/dev/zero",
        "/dev/random",
        "/dev/urandom",
        "/dev/full",
    ]
)
_FD = re.compile(r"^/(?:dev/fd|proc/self/fd)/\d+$")
_GLOB = re.compile(r"[*?\[]")
_BRACE_LIMIT = 64
_GLOB_LIMIT = 200
_ENV_NOT_SECRET = frozenset({".env.example", ".env.sample", ".env.template", ".env.dist"})
_SECRET_NAMES = ("id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.pem", "*.key", "*.p12")
_SECRET_FILES = frozenset({".netrc", "_netrc", ".git-credentials", ".pgpass"})
_SECRET_HOME_DIRS = (".ssh", ".aws", ".gnupg", ".docker", ".kube", ".config/gcloud")


class PathError(ValueError):
    """A path that cannot be checked (a NUL byte); the caller denies with this message."""


@dataclass(frozen=True)
class Place:
    """A resolved path and the root it lies in (None: outside every root)."""

    path: Path
    root: Path | None
    relative: str | None  # POSIX path relative to `root` ("." for the root itself)

    @property
    def inside(self) -> bool:
        return self.root is not None

    def targets(self) -> list[str]:
        """The texts allow patterns are matched against: relative to its root, and absolute."""
        out = [self.relative] if self.relative is not None else []
        return [*out, self.path.as_posix()]


def real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def roots_of(cwd: Path, extra: Iterable[Path] = ()) -> tuple[Path, ...]:
    """The working folder and the `--add-dir` folders, resolved; the working folder first."""
    out = [real(cwd)]
    for root in extra:
        resolved = real(root)
        if resolved not in out:
            out.append(resolved)
    return tuple(out)


def check_text(raw: str) -> None:
    if "\x00" in raw:
        shown = raw.replace("\x00", "\\0")
        raise PathError(f"the path {shown!r} contains a NUL byte")


def expand_tilde(raw: str, cwd: Path) -> str:
    """`~`, `~user`, `~+` (the current folder) and `~-` (unknown: `/` stands for it)."""
    if not raw.startswith("~"):
        return raw
    head, sep, tail = raw.partition("/")
    if head == "~+":
        return str(cwd) + sep + tail
    if head == "~-":
        return "/" + tail  # $OLDPWD cannot be known here: treat it as outside
    return os.path.expanduser(raw)


def resolve(raw: str, cwd: Path) -> Path:
    """`raw` (with `~` forms expanded) made absolute against `cwd`, symlinks resolved."""
    check_text(raw)
    return real(Path(cwd) / expand_tilde(raw, Path(cwd)))


def is_device(raw: str) -> bool:
    """A harmless device path, by its exact text (`/dev/fd/../x` is not one: it is resolved)."""
    return raw in DEVICES or bool(_FD.match(raw))


def place(path: Path, roots: tuple[Path, ...]) -> Place:
    for root in roots:
        if path.is_relative_to(root):
            return Place(path, root, path.relative_to(root).as_posix() or ".")
    return Place(path, None, None)


def locate(raw: str, cwd: Path, roots: tuple[Path, ...]) -> Place:
    return place(resolve(raw, cwd), roots)


def expand_braces(word: str, limit: int = _BRACE_LIMIT) -> list[str] | None:
    """Bash brace expansion of `word` (`{a,b}`, `{1..3}`); None when it grows past `limit`."""
    results = [word]
    done: list[str] = []
    while results:
        text = results.pop()
        span = _first_brace(text)
        if span is None:
            done.append(text)
        else:
            start, end, options = span
            results += [text[:start] + o + text[end + 1 :] for o in options]
        if len(done) + len(results) > limit:
            return None
    return done


def _first_brace(text: str) -> tuple[int, int, list[str]] | None:
    for start, char in enumerate(text):
        if char != "{":
            continue
        depth, parts, last = 0, [], start + 1
        for index in range(start, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    parts.append(text[last:index])
                    inner = text[start + 1 : index]
                    if len(parts) > 1:
                        return start, index, parts
                    seq = re.fullmatch(r"(-?\w+)\.\.(-?\w+)(?:\.\.-?\d+)?", inner)
                    if seq:  # a sequence: its ends are enough to place the paths
                        return start, index, [seq.group(1), seq.group(2)]
                    break
            elif text[index] == "," and depth == 1:
                parts.append(text[last:index])
                last = index + 1
    return None


def candidates(raw: str, cwd: Path) -> list[str]:
    """Every path a shell word may stand for: brace forms, then glob matches, then itself."""
    forms = expand_braces(raw) if "{" in raw else [raw]
    if forms is None:
        return [raw, "/"]  # too many forms to list: count it as reaching outside
    out: list[str] = []
    for form in forms:
        out.append(form)
        if _GLOB.search(form):
            expanded = expand_tilde(form, cwd)
            base = expanded if os.path.isabs(expanded) else os.path.join(cwd, expanded)
            try:
                matches = glob.glob(base)
            except (OSError, ValueError, RecursionError):
                matches = []
            out += matches[:_GLOB_LIMIT]
            if len(matches) > _GLOB_LIMIT:
                out.append("/")
    return out


def looks_like_path(word: str) -> bool:
    return "/" in word or word.startswith(("~", "."))


def path_words(words: Iterable[str]) -> list[str]:
    """The words of a command that look like paths, including option values (`--o=/x`, `-C..`,
    `of=/dev/sda`)."""
    out: list[str] = []
    for word in words:
        if looks_like_path(word) or "{" in word:
            out.append(word)
        if word.startswith("-") and "=" in word:
            value = word.split("=", 1)[1]
        elif word.startswith("-") and not word.startswith("--") and len(word) > 2:
            value = word[2:]
        elif "=" in word:
            value = word.split("=", 1)[1]
        else:
            continue
        if value and (looks_like_path(value) or "{" in value):
            out.append(value)
    return out


def in_git_dir(path: Path) -> bool:
    """Whether `path` is a `.git` folder (or file), or lies inside one."""
    return any(part.casefold() == ".git" for part in path.parts)


def secret_name(name: str) -> bool:
    """A file name that commonly holds credentials (`.env`, `id_rsa`, `*.pem`, `.netrc`)."""
    name = name.casefold()
    if name == ".env" or (name.startswith(".env.") and name not in _ENV_NOT_SECRET):
        return True
    return name in _SECRET_FILES or any(fnmatchcase(name, p) for p in _SECRET_NAMES)


def is_secret(path: Path, protected: Iterable[Path] = ()) -> bool:
    """A file that commonly holds credentials, or one of `protected`."""
    if secret_name(path.name):
        return True
    home = real(os.path.expanduser("~"))
    for folder in _SECRET_HOME_DIRS:
        if path.is_relative_to(home / folder):
            return True
    return any(path == real(p) for p in protected)


def explicit_match(pattern: str, path: Path, targets: Iterable[str]) -> bool:
    """Whether `pattern` names this file itself, not only a folder or everything (`src/*`)."""
    last = pattern.rstrip("/").rsplit("/", 1)[-1]
    if not re.sub(r"[*?\[\]]", "", last):
        return False
    return any(fnmatchcase(t, pattern) for t in targets) and fnmatchcase(path.name, last)
