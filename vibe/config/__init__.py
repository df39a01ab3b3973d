"""Configuration: schema, layered loading with a trust gate, API keys.

Names resolve lazily (PEP 562) so that `vibe.config.secrets`/`trust` load without pydantic:
the TUI draws its first frame before the schema is imported."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vibe.config.loader import LoadedConfig, load_config, vibe_home
    from vibe.config.schema import ModeConfig, ModelConfig, ProviderConfig, ToolConfig, VibeConfig

_WHERE = {
    "LoadedConfig": "vibe.config.loader",
    "load_config": "vibe.config.loader",
    "vibe_home": "vibe.config.loader",
    "ModeConfig": "vibe.config.schema",
    "ModelConfig": "vibe.config.schema",
    "ProviderConfig": "vibe.config.schema",
    "ToolConfig": "vibe.config.schema",
    "VibeConfig": "vibe.config.schema",
}

__all__ = [
    "LoadedConfig",
    "ModeConfig",
    "ModelConfig",
    "ProviderConfig",
    "ToolConfig",
    "VibeConfig",
    "load_config",
    "vibe_home",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'vibe.config' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
