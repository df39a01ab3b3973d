"""Configuration: schema, layered loading with a trust gate, API keys."""

from vibe.config.loader import LoadedConfig, load_config, vibe_home
from vibe.config.schema import ModeConfig, ModelConfig, ProviderConfig, ToolConfig, VibeConfig

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
