"""From config to the tools' PermissionPolicy: a mode's safety level plus `[tools.NAME]` tables;
"always" approvals are saved to `[tools.NAME] allowlist` in $VIBE_HOME/config.toml."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from tools.base import Tool
from tools.permissions import PermissionPolicy, tool_policies
from vibe.config import ModeConfig, ToolConfig, VibeConfig
from vibe.config.trust import write_toml_atomic
from vibe.errors import ConfigError, UsageError


def tool_configs(config: VibeConfig, mode: ModeConfig) -> dict[str, ToolConfig]:
    """`[tools.*]` of the config with the mode's own `tools` tables laid over them."""
    merged = dict(config.tools)
    for name, table in mode.tools.items():
        base = merged.get(name)
        if base is None:
            merged[name] = table
        else:
            merged[name] = base.model_copy(update=table.model_dump(exclude_unset=True))
    return merged


def build_policy(config: VibeConfig, mode: ModeConfig) -> PermissionPolicy:
    """safe → read-only, neutral → ask for writes, destructive → edits run, yolo → all run.
    Denylists and `never` win in every mode."""
    tables = {
        name: cfg.model_dump(include={"permission", "allowlist", "denylist"}, exclude_none=True)
        for name, cfg in tool_configs(config, mode).items()
    }
    try:
        tools = tool_policies(tables)
    except ValueError as exc:
        raise ConfigError("config", "tools", str(exc)) from exc
    return PermissionPolicy(
        tools=tools,
        read_only=mode.safety == "safe",
        auto_edits=mode.safety == "destructive",
        auto_approve=mode.safety == "yolo",
    )


def select_tools(
    tools: Mapping[str, Tool],
    mode: ModeConfig,
    enabled: Iterable[str] | None = None,
    disabled: Iterable[str] = (),
) -> dict[str, Tool]:
    """The tools the model sees: the mode's selection narrowed by --enabled/--disabled-tools."""
    enabled = list(enabled) if enabled is not None else None
    disabled = list(disabled)
    unknown = [n for n in (enabled or []) + disabled if n not in tools]
    if unknown:
        raise UsageError(
            f"unknown tool {unknown[0]!r}; available tools: {', '.join(sorted(tools))}"
        )
    names = list(tools)
    if mode.enabled_tools is not None:
        names = [n for n in names if n in mode.enabled_tools]
    if enabled is not None:
        names = [n for n in names if n in enabled]
    skip = set(disabled) | set(mode.disabled_tools)
    return {n: tools[n] for n in names if n not in skip}


def parse_tool_list(value: str | None) -> list[str] | None:
    """`--enabled-tools a,b` → ["a", "b"]; None stays None."""
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def save_always(config_file: Path, tool_name: str, pattern: str) -> None:
    """Add `pattern` to `[tools.<tool_name>] allowlist` in config_file (atomic, rest kept)."""
    data: dict = {}
    if config_file.is_file():
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise ConfigError(str(config_file), "", f"cannot update: {exc}") from exc
    table = data.setdefault("tools", {}).setdefault(tool_name, {})
    allow = list(table.get("allowlist", []))
    if pattern not in allow:
        allow.append(pattern)
    table["allowlist"] = allow
    write_toml_atomic(config_file, data)
