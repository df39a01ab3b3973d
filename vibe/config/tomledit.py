"""Edit a user's TOML config in place: tomlkit keeps its comments, order and formatting, and the
result is written atomically. A symlinked config (dotfiles) stays a symlink: the target is edited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vibe.config.trust import write_text_atomic
from vibe.errors import ConfigError


def read_toml_doc(path: Path, key: str = "", prefix: str = "") -> Any:
    """path's tomlkit document (empty when there is no file). Raises ConfigError, its message
    starting with `prefix`, when the file cannot be read or is not valid TOML."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    target = path.resolve()
    try:
        text = target.read_text(encoding="utf-8") if target.is_file() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), key, f"{prefix}cannot read the file ({exc})") from exc
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(str(path), key, f"{prefix}the file is not valid TOML ({exc})") from exc


def write_toml_doc(path: Path, doc: Any, key: str = "", prefix: str = "") -> None:
    """Write `doc` back to path's target atomically; ConfigError when it cannot be written."""
    import tomlkit

    try:
        write_text_atomic(path.resolve(), tomlkit.dumps(doc))
    except OSError as exc:
        raise ConfigError(str(path), key, f"{prefix}cannot write the file ({exc})") from exc
