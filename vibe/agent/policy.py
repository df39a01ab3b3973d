"""From config to the tools' PermissionPolicy: a mode's safety level plus `[tools.NAME]` tables;
"always" approvals are saved to `[tools.NAME] allowlist` in $VIBE_HOME/config.toml (as written)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from pathlib import Path

import tomlkit

from tools.base import Tool
from tools.permissions import READ_TOOLS, PermissionPolicy, tool_policies
from vibe.agent.plan import QUIET_TOOLS
from vibe.config import ModeConfig, ToolConfig, VibeConfig
from vibe.config.tomledit import read_toml_doc, write_toml_doc
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


def build_policy(
    config: VibeConfig,
    mode: ModeConfig,
    *,
    extra_roots: Iterable[Path] = (),
    protected: Iterable[Path] = (),
    plan_file: Path | None = None,
    read_roots: Iterable[Path] = (),
) -> PermissionPolicy:
    """safe → read-only, neutral → ask for writes, destructive → edits run, yolo → all run.
    Denylists and `never` win in every mode. `extra_roots`: the --add-dir folders (inside the
    boundary); outside it, `outside_workdir` decides; `protected`: more secret files that ask
    (e.g. $VIBE_HOME/.env)."""
    tables = {
        name: cfg.model_dump(include={"permission", "allowlist", "denylist"}, exclude_none=True)
        for name, cfg in tool_configs(config, mode).items()
    }
    # skill, ask_user_question, exit_plan_mode and task (its subagent's calls are checked
    # one by one, read-only in plan mode) run unless configured
    for name in (*QUIET_TOOLS, "task"):
        tables.setdefault(name, {}).setdefault("permission", "always")
    try:
        tools = tool_policies(tables)
    except ValueError as exc:
        raise ConfigError("config", "tools", str(exc)) from exc
    return PermissionPolicy(
        tools=tools,
        read_only=mode.safety == "safe",
        auto_edits=mode.safety == "destructive",
        auto_approve=mode.safety == "yolo",
        extra_roots=tuple(extra_roots),
        outside_workdir=config.outside_workdir,
        protected=tuple(protected),
        # web_fetch only reads: plan mode lets it ask (or run where allowed), not deny.
        read_only_tools=READ_TOOLS | QUIET_TOOLS | {"task", "web_fetch"},
        plan_file=plan_file if mode.safety == "safe" else None,
        read_roots=tuple(read_roots),
    )


def select_tools(
    tools: Mapping[str, Tool],
    mode: ModeConfig,
    enabled: Iterable[str] | None = None,
    disabled: Iterable[str] = (),
    *,
    strict: bool = True,
    later: Iterable[str] = (),
) -> dict[str, Tool]:
    """The tools the model sees: the mode's selection narrowed by --enabled/--disabled-tools.
    Names may be globs (`github_*`). `strict`: a plain name that is no tool is an error, unless
    it starts with one of `later` (the `server_` prefixes of MCP tools that arrive later)."""
    enabled = list(enabled) if enabled is not None else None
    disabled = list(disabled)
    prefixes = tuple(later)
    unknown = [
        n
        for n in (enabled or []) + disabled
        if n not in tools and not _is_glob(n) and not (prefixes and n.startswith(prefixes))
    ]
    if unknown and strict:
        raise UsageError(
            f"unknown tool {unknown[0]!r}; available tools: {', '.join(sorted(tools))}"
        )
    names = list(tools)
    if mode.enabled_tools is not None:
        names = [n for n in names if _matches(n, mode.enabled_tools)]
    if enabled is not None:
        names = [n for n in names if _matches(n, enabled)]
    skip = [*disabled, *mode.disabled_tools]
    return {n: tools[n] for n in names if not _matches(n, skip)}


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(name == p or (_is_glob(p) and fnmatchcase(name, p)) for p in patterns)


def parse_tool_list(value: str | None) -> list[str] | None:
    """`--enabled-tools a,b` → ["a", "b"]; None stays None."""
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def save_always(config_file: Path, tool_name: str, pattern: str) -> None:
    """Add `pattern` to `[tools.<tool_name>] allowlist` in config_file, keeping the file as the
    user wrote it (comments, order, formatting: tomlkit) and writing atomically. Raises
    ConfigError, saying why, when the file cannot be read, parsed or written."""
    where = str(config_file)
    doc = read_toml_doc(config_file, prefix="not saved: ")
    tools = doc.get("tools")
    if tools is None:
        tools = tomlkit.table(is_super_table=True)
        doc["tools"] = tools
    if not isinstance(tools, dict):
        raise ConfigError(where, "tools", "not saved: `tools` is not a table")
    table = tools.get(tool_name)
    if table is None:
        table = tomlkit.table()
        tools[tool_name] = table
    if not isinstance(table, dict):
        raise ConfigError(where, f"tools.{tool_name}", "not saved: not a table")
    allow = table.get("allowlist")
    if allow is None:
        allow = tomlkit.array()
        table["allowlist"] = allow
    if not isinstance(allow, list):
        raise ConfigError(where, f"tools.{tool_name}.allowlist", "not saved: not a list")
    if pattern in allow:
        return
    allow.append(pattern)
    write_toml_doc(config_file, doc, prefix="not saved: ")
