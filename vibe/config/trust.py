"""Trusted folders: a project's .vibe/config.toml and AGENTS.md are read only from these."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path

import tomli_w


def _trust_file(home: Path) -> Path:
    return home / "trusted_folders.toml"


def trusted_folders(home: Path) -> list[Path]:
    try:
        with _trust_file(home).open("rb") as fh:
            data = tomllib.load(fh)
    except (FileNotFoundError, tomllib.TOMLDecodeError):
        return []
    return [Path(p) for p in data.get("trusted", []) if isinstance(p, str)]


def is_trusted(folder: Path, home: Path) -> bool:
    folder = folder.resolve()
    return any(folder == t or t in folder.parents for t in trusted_folders(home))


def trust_folder(folder: Path, home: Path) -> None:
    """Remember `folder` as trusted (atomic write)."""
    folders = [str(p) for p in trusted_folders(home)]
    resolved = str(folder.resolve())
    if resolved not in folders:
        folders.append(resolved)
    write_toml_atomic(_trust_file(home), {"trusted": folders})


def write_toml_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            tomli_w.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
