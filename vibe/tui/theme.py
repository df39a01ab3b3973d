"""`/theme`: Textual's themes, the choice saved as `theme` in the user's config.toml (tomlkit
keeps the file's comments and layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vibe.errors import ConfigError


def apply_theme(app: Any, name: str | None) -> bool:
    """Use theme `name` if Textual knows it; False (nothing changes) otherwise."""
    if not name or name not in app.available_themes:
        return False
    app.theme = name
    return True


def save_theme(config_file: Path, name: str) -> None:
    """Set `theme = name` at the top level of config_file, written atomically. Raises
    ConfigError when the file cannot be read, parsed or written."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    from vibe.config.trust import write_text_atomic

    target = config_file.resolve()
    where = str(config_file)
    try:
        text = target.read_text(encoding="utf-8") if target.is_file() else ""
        doc = tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, TOMLKitError) as exc:
        raise ConfigError(where, "theme", f"not saved: {exc}") from exc
    doc["theme"] = name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, tomlkit.dumps(doc))
    except OSError as exc:
        raise ConfigError(where, "theme", f"not saved: cannot write the file ({exc})") from exc
