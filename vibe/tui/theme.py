"""`/theme`: Textual's themes, the choice saved as `theme` in the user's config.toml (tomlkit
keeps the file's comments and layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def apply_theme(app: Any, name: str | None) -> bool:
    """Use theme `name` if Textual knows it; False (nothing changes) otherwise."""
    if not name or name not in app.available_themes:
        return False
    app.theme = name
    return True


def save_theme(config_file: Path, name: str) -> None:
    """Set `theme = name` at the top level of config_file, written atomically. Raises
    ConfigError when the file cannot be read, parsed or written."""
    from vibe.config.tomledit import read_toml_doc, write_toml_doc

    doc = read_toml_doc(config_file, "theme", "not saved: ")
    doc["theme"] = name
    write_toml_doc(config_file, doc, "theme", "not saved: ")
