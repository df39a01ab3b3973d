"""Mode (agent profile) cycling for Shift+Tab: the order of LoadedConfig.modes, wrapping."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vibe.config import ModeConfig


def next_mode(modes: list[ModeConfig], current: str) -> ModeConfig:
    names = [m.name for m in modes]
    i = names.index(current) if current in names else -1
    return modes[(i + 1) % len(modes)]


def find_mode(modes: list[ModeConfig], query: str) -> ModeConfig | None:
    """By name or display name, case-insensitive."""
    q = query.strip().lower()
    return next((m for m in modes if q in (m.name.lower(), m.display_name.lower())), None)


def label(mode: ModeConfig) -> str:
    return mode.display_name or mode.name
