"""Layered loading: built-ins < $VIBE_HOME/config.toml < agents/*.toml < trusted project
.vibe/config.toml < VIBE_* environment variables. Any error stops everything (no half-read config)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vibe.config.builtins import BUILTIN_MODELS, BUILTIN_MODES, BUILTIN_PROVIDERS
from vibe.config.schema import ModeConfig, ModelConfig, ProviderConfig, VibeConfig
from vibe.config.secrets import lookup_key
from vibe.config.trust import has_project_files, is_trusted, project_config, project_root
from vibe.errors import ConfigError
from vibe.mcp.config import HTTP_TAG, STDIO_TAG, check_mcp_names, normalize_name

_ENV_OVERRIDABLE = (
    "active_model",
    "api_retry_max_elapsed_time",
    "api_connect_timeout",
    "api_read_timeout",
    "api_stream_idle_timeout",
    "api_response_timeout",
    "max_tool_output_bytes",
    "outside_workdir",
)


# Lists whose entries must be unique within one file: (section, key field, what it is).
_UNIQUE = (("providers", "name", "provider name"), ("models", "alias", "model alias"))


def vibe_home() -> Path:
    return Path(os.environ.get("VIBE_HOME") or Path.home() / ".vibe").expanduser()


@dataclass
class LoadedConfig:
    """The effective config plus where it came from."""

    config: VibeConfig
    modes: list[ModeConfig]
    home: Path
    project_dir: Path | None
    trusted: bool
    files: list[Path] = field(default_factory=list)
    subagents: list[ModeConfig] = field(default_factory=list)  # agent_type = "subagent"

    @property
    def env_file(self) -> Path:
        return self.home / ".env"

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    def mode(self, name: str) -> ModeConfig | None:
        return next((m for m in self.modes if m.name == name), None)

    def resolve_model(self, alias: str | None = None) -> tuple[ModelConfig, ProviderConfig]:
        alias = alias or self.config.active_model
        model = self.config.model(alias)
        if model is None:
            known = ", ".join(m.key for m in self.config.models)
            raise ConfigError(
                str(self.config_file), "active_model", f"unknown model {alias!r}; known: {known}"
            )
        provider = self.config.provider(model.provider)
        assert provider is not None  # checked at load time
        return model, provider

    def api_key(self, provider: ProviderConfig) -> str | None:
        return lookup_key(provider.api_key_env_var, self.env_file)


def load_config(
    cwd: Path | None = None, *, trust: bool = False, home: Path | None = None
) -> LoadedConfig:
    """Read every layer, validate each file on its own, then the merged whole."""
    home = home or vibe_home()
    cwd = (cwd or Path.cwd()).resolve()
    merged: dict[str, Any] = {
        "providers": [p.model_dump() for p in BUILTIN_PROVIDERS],
        "models": [m.model_dump() for m in BUILTIN_MODELS],
    }
    origin: dict[str, str] = {}  # "models:<key>" / "active_model" -> file it came from
    files: list[Path] = []
    modes = list(BUILTIN_MODES)
    subagents: list[ModeConfig] = []

    user_file = home / "config.toml"
    if user_file.is_file():
        _layer(merged, _read_validated(user_file), str(user_file), origin)
        files.append(user_file)

    for agent_file in sorted((home / "agents").glob("*.toml")):
        raw = _read_toml(agent_file)
        extra = {k: raw.pop(k) for k in ("providers", "models") if k in raw}
        _validate(VibeConfig, extra, agent_file)
        _check_duplicates(extra, agent_file)
        mode = _validate(
            ModeConfig, {"name": agent_file.stem, **raw}, agent_file, _mcp_names(merged)
        )
        _layer(merged, extra, str(agent_file), origin)
        (subagents if mode.agent_type == "subagent" else modes).append(mode)
        if mode.active_model:
            origin.setdefault(f"mode:{mode.name}", str(agent_file))
        files.append(agent_file)

    project_dir = _find_project_dir(cwd)
    trusted = trust or (project_dir is not None and is_trusted(project_dir, home))
    if project_dir is not None and trusted:
        project_file = project_config(cwd, project_dir)
        if project_file is not None:
            raw = _read_validated(project_file, _mcp_names(merged))
            _layer(merged, raw, str(project_file), origin)
            files.append(project_file)

    for key in _ENV_OVERRIDABLE:
        value = os.environ.get(f"VIBE_{key.upper()}")
        if value:
            merged[key] = value
            origin[key] = f"environment variable VIBE_{key.upper()}"

    try:
        config = _validate(VibeConfig, merged, "the merged configuration")
    except ConfigError as exc:  # name the layer the bad value came from (e.g. VIBE_* vars)
        source = origin.get(exc.key_path.split(".")[0].split("[")[0])
        if source is None:
            raise
        raise ConfigError(source, exc.key_path, exc.expected) from exc
    top_mode = config.top_level_mode()
    if top_mode is not None:
        modes.append(top_mode)
    _cross_check(config, modes + subagents, origin, str(user_file))
    return LoadedConfig(config, modes, home, project_dir, trusted, files, subagents)


def _find_project_dir(cwd: Path) -> Path | None:
    """The project root (git root, else cwd) when something there needs trust, else None."""
    root = project_root(cwd)
    return root if has_project_files(cwd, root) else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from exc


def _read_validated(path: Path, mcp_names: list[str] | None = None) -> dict[str, Any]:
    raw = _read_toml(path)
    _validate(VibeConfig, raw, path, mcp_names)
    _check_duplicates(raw, path)
    return raw


def _mcp_names(merged: dict[str, Any]) -> list[str]:
    """The MCP servers of the layers read so far: their [tools.<server>_*] tables are valid."""
    return [normalize_name(str(s.get("name", ""))) for s in merged.get("mcp_servers", ())]


def _check_duplicates(raw: dict[str, Any], source: Path) -> None:
    """Two providers with one name, or two models with one alias, in a single file: the
    later would silently replace the earlier."""
    for section, field_name, what in _UNIQUE:
        seen: dict[str, int] = {}
        for i, item in enumerate(raw.get(section) or []):
            key = item.get(field_name) or item.get("name") or ""
            if key in seen:
                where = f"{section}[{i}].{field_name if item.get(field_name) else 'name'}"
                raise ConfigError(
                    str(source),
                    where,
                    f"duplicate {what} {key!r} (also {section}[{seen[key]}]); each must be unique",
                )
            seen[key] = i
    duplicate = check_mcp_names(list(raw.get("mcp_servers") or []))
    if duplicate:
        where, _, what = duplicate.partition("\0")
        raise ConfigError(str(source), where, f"{what}; each must be unique")


def _validate(
    model: type, raw: dict[str, Any], source: Path | str, mcp_names: list[str] | None = None
) -> Any:
    try:
        return model.model_validate(raw, context={"mcp_servers": mcp_names or []})
    except ValidationError as exc:
        err = exc.errors()[0]
        key_path = _key_path(err["loc"])
        expected = err["msg"]
        if err["type"] == "extra_forbidden":
            expected = "unknown key (check the spelling; see config.example.toml)"
        elif err["type"] == "missing":
            expected = "required key is missing"
        elif err["type"] == "value_error":  # our own checks say what is wrong; the value
            expected = str(err["ctx"]["error"])  # may be a secret (a header), so it is not shown
        else:
            expected = f"{expected}, got {err.get('input')!r}"
        raise ConfigError(str(source), key_path, expected) from exc


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part in ("[key]", STDIO_TAG, HTTP_TAG):  # "the dict key itself", union tags
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _layer(
    merged: dict[str, Any], raw: dict[str, Any], source: str, origin: dict[str, str]
) -> None:
    """Merge one file into the accumulated dict; lists merge by name/alias, tools per tool."""
    for key, value in raw.items():
        if key == "providers":
            merged["providers"] = _merge_by(merged["providers"], value, lambda p: p.get("name"))
        elif key == "models":
            for i, m in enumerate(value):
                origin[f"models:{m.get('alias') or m.get('name')}"] = f"{source}\0{i}"
            merged["models"] = _merge_by(
                merged["models"], value, lambda m: m.get("alias") or m.get("name")
            )
        elif key == "mcp_servers":  # a (trusted) project adds servers or replaces by name
            merged[key] = _merge_by(
                merged.get(key, []), value, lambda s: normalize_name(str(s.get("name", "")))
            )
            origin[key] = source
        elif key == "tools":
            tools = merged.setdefault("tools", {})
            for name, table in value.items():
                tools[name] = {**tools.get(name, {}), **table}
        else:
            merged[key] = value
            origin[key] = source


def _merge_by(base: list[dict], new: list[dict], key: Any) -> list[dict]:
    out = {key(item): item for item in base}
    for item in new:
        out[key(item)] = item
    return list(out.values())


def _cross_check(
    config: VibeConfig, modes: list[ModeConfig], origin: dict[str, str], default_file: str
) -> None:
    providers = {p.name for p in config.providers}
    for model in config.models:
        if model.provider not in providers:
            source, _, index = origin.get(f"models:{model.key}", default_file).partition("\0")
            raise ConfigError(
                source,
                f"models[{index or 0}].provider",
                f"unknown provider {model.provider!r}; defined providers: {', '.join(sorted(providers))}",
            )
    known = ", ".join(m.key for m in config.models)
    if config.model(config.active_model) is None:
        source = origin.get("active_model", default_file)
        raise ConfigError(
            source, "active_model", f"unknown model {config.active_model!r}; known: {known}"
        )
    for mode in modes:
        if mode.active_model and config.model(mode.active_model) is None:
            source = origin.get(f"mode:{mode.name}", default_file)
            raise ConfigError(
                source, "active_model", f"unknown model {mode.active_model!r}; known: {known}"
            )
