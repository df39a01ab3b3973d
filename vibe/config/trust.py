"""Trusted folders: a project's .vibe/config.toml and AGENTS.md are read only from these.

The folder a trust decision is about is the project root: the git root of the working folder,
else the working folder itself (never the nearest folder that happens to hold an AGENTS.md).
$VIBE_HOME/trusted_folders.toml keeps `trusted = [...]` and `untrusted = [...]` (the folders
the user said "no" to, so they are not asked about again); the most specific entry wins.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Literal

import tomli_w

TrustState = Literal["trusted", "untrusted"]
AGENTS_FILE = "AGENTS.md"


def _trust_file(home: Path) -> Path:
    return home / "trusted_folders.toml"


def project_root(cwd: Path) -> Path:
    """The git root of `cwd` (the nearest folder up with a `.git`), else `cwd` itself."""
    cwd = cwd.resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / ".git").exists():
            return folder
    return cwd


def _between(cwd: Path, root: Path) -> list[Path]:
    """cwd, its parents up to and including root (only cwd when cwd is not below root)."""
    cwd, root = cwd.resolve(), root.resolve()
    if not cwd.is_relative_to(root):
        return [cwd]
    return [cwd, *(p for p in cwd.parents if p.is_relative_to(root))]


def project_config(cwd: Path, root: Path) -> Path | None:
    """The nearest `.vibe/config.toml` from cwd up to the project root, if any."""
    for folder in _between(cwd, root):
        candidate = folder / ".vibe" / "config.toml"
        if candidate.is_file():
            return candidate
    return None


def has_project_files(cwd: Path, root: Path) -> bool:
    """Whether anything between cwd and the root needs trust: .vibe/config.toml, AGENTS.md
    or .vibe/hooks.toml."""
    return project_config(cwd, root) is not None or any(
        (folder / AGENTS_FILE).is_file() or (folder / ".vibe" / "hooks.toml").is_file()
        or (folder / ".vibe" / "skills").is_dir() or (folder / ".agents" / "skills").is_dir()
        for folder in _between(cwd, root)
    )


def _read(home: Path) -> dict:
    try:
        with _trust_file(home).open("rb") as fh:
            return tomllib.load(fh)
    except (FileNotFoundError, NotADirectoryError, tomllib.TOMLDecodeError):
        return {}


def _paths(data: dict, key: str) -> list[Path]:
    value = data.get(key, [])
    if not isinstance(value, list):
        return []
    return [Path(p) for p in value if isinstance(p, str)]


def trusted_folders(home: Path) -> list[Path]:
    return _paths(_read(home), "trusted")


def untrusted_folders(home: Path) -> list[Path]:
    return _paths(_read(home), "untrusted")


def trust_state(folder: Path, home: Path) -> TrustState | None:
    """What the user decided for `folder` or the nearest folder above it; None: never asked."""
    folder = folder.resolve()
    data = _read(home)
    best: tuple[int, TrustState] | None = None
    # Untrusted last: on a tie (the same folder in both lists) "no" wins.
    for state in ("trusted", "untrusted"):
        for entry in _paths(data, state):
            if folder == entry or entry in folder.parents:
                depth = len(entry.parts)
                if best is None or depth >= best[0]:
                    best = (depth, state)  # type: ignore[assignment]
    return best[1] if best else None


def is_trusted(folder: Path, home: Path) -> bool:
    return trust_state(folder, home) == "trusted"


def is_untrusted(folder: Path, home: Path) -> bool:
    """The user said "don't trust" to this folder (or one above it): do not ask again."""
    return trust_state(folder, home) == "untrusted"


def trust_folder(folder: Path, home: Path) -> None:
    """Remember `folder` as trusted (atomic write); it leaves the untrusted list."""
    _remember(folder, home, add="trusted", remove="untrusted")


def distrust_folder(folder: Path, home: Path) -> None:
    """Remember that the user does not trust `folder` (atomic write)."""
    _remember(folder, home, add="untrusted", remove="trusted")


def _remember(folder: Path, home: Path, *, add: str, remove: str) -> None:
    data = _read(home)
    resolved = str(folder.resolve())
    lists = {key: [str(p) for p in _paths(data, key)] for key in ("trusted", "untrusted")}
    if resolved not in lists[add]:
        lists[add].append(resolved)
    lists[remove] = [p for p in lists[remove] if p != resolved]
    out = {k: v for k, v in data.items() if k not in lists}
    out.update({k: v for k, v in lists.items() if v or k == "trusted"})
    write_toml_atomic(_trust_file(home), out)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` via a temp file in the same folder (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with contextlib.suppress(FileNotFoundError):  # keep the mode of the file replaced
            os.fchmod(fd, path.stat().st_mode & 0o777)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_toml_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, tomli_w.dumps(data))
