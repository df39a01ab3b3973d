"""Builds a ready Agent from config and command-line flags: mode, model, provider, tools,
permissions, session and system prompt. Used by `vibe run`; the TUI can reuse the pieces."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from tools.registry import builtin_tools
from vibe.agent.approval import Approver, HeadlessApprover
from vibe.agent.budget import Limits
from vibe.agent.loop import Agent, AgentSettings
from vibe.agent.policy import build_policy, parse_tool_list, save_always, select_tools
from vibe.agent.prompts import build_system_prompt
from vibe.config import LoadedConfig, ModeConfig, ModelConfig, ProviderConfig, load_config
from vibe.config.secrets import redact
from vibe.errors import ConfigError, UsageError
from vibe.providers.base import Provider
from vibe.session import Session, find, latest_for


@dataclass
class Run:
    """Everything a headless run needs, built and wired."""

    agent: Agent
    provider: Provider
    session: Session
    model: ModelConfig
    mode: ModeConfig
    cwd: Path
    loaded: LoadedConfig


def workdir(value: str | None) -> Path:
    cwd = Path(value).expanduser() if value else Path.cwd()
    if not cwd.is_dir():
        raise UsageError(f"--workdir {value}: not a directory")
    return cwd.resolve()


def pick_mode(loaded: LoadedConfig, name: str | None) -> ModeConfig:
    """--agent NAME, else the config's top-level mode if it defines one, else `default`."""
    if name:
        mode = loaded.mode(name)
        if mode is None:
            known = ", ".join(m.name for m in loaded.modes)
            raise UsageError(f"unknown agent {name!r}; known: {known}")
        return mode
    top = loaded.config.top_level_mode()
    return (top and loaded.mode(top.name)) or loaded.mode("default") or loaded.modes[0]


def known_secrets(loaded: LoadedConfig) -> list[str]:
    """Every API key the config can reach, so none is ever written anywhere."""
    keys = (loaded.api_key(p) for p in loaded.config.providers)
    return sorted({k for k in keys if k}, key=len, reverse=True)


def limits_from(args: argparse.Namespace) -> Limits:
    for flag in ("max_turns", "max_tokens", "max_price", "time_limit"):
        value = getattr(args, flag, None)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    return Limits(args.max_turns, args.max_tokens, args.max_price, args.time_limit)


def open_session(
    loaded: LoadedConfig, cwd: Path, args: argparse.Namespace, model: str, secrets: list[str]
) -> Session:
    """--resume ID, --continue (latest here; a new one if none), else a new session."""
    if getattr(args, "resume", None):
        return find(args.resume, loaded.home, secrets=secrets)
    if getattr(args, "continue_", False):
        found = latest_for(cwd, loaded.home, secrets=secrets)
        if found is not None:
            return found
    return Session.create(loaded.home, cwd, model=model, secrets=secrets)


def make_agent(
    loaded: LoadedConfig,
    mode: ModeConfig,
    model: ModelConfig,
    provider: Provider,
    approver: Approver,
    session: Session,
    cwd: Path,
    *,
    limits: Limits | None = None,
    enabled: list[str] | None = None,
    disabled: list[str] | None = None,
) -> Agent:
    config = loaded.config
    try:
        raw = {name: t.model_dump(exclude_none=True) for name, t in config.tools.items()}
        available = builtin_tools(raw)
    except ValueError as exc:
        raise ConfigError(str(loaded.config_file), "tools", str(exc)) from exc
    tools = select_tools(available, mode, enabled, disabled or ())
    settings = AgentSettings(
        model=model,
        policy=build_policy(config, mode),
        cwd=cwd,
        limits=limits or Limits(),
        system_prompt=build_system_prompt(
            cwd, tools, trusted=loaded.trusted, mode_prompt=mode.system_prompt
        ),
        max_tool_output_bytes=config.max_tool_output_bytes,
        on_always=lambda tool, pattern: save_always(loaded.config_file, tool, pattern),
    )
    return Agent(provider, tools, approver, settings, session)


def build_run(args: argparse.Namespace, secrets: list[str]) -> Run:
    """Config → Run for `vibe run`; `secrets` is filled in place with every known API key."""
    cwd = workdir(args.workdir)
    loaded = load_config(cwd, trust=args.trust)
    secrets.extend(known_secrets(loaded))
    setup_logging(loaded.home, secrets)
    mode = pick_mode(loaded, args.agent)
    model, provider_config = loaded.resolve_model(args.model or mode.active_model)
    limits = limits_from(args)
    provider = _provider(args, model, provider_config, loaded, secrets)
    session = open_session(loaded, cwd, args, model.key, secrets)
    agent = make_agent(
        loaded,
        mode,
        model,
        provider,
        HeadlessApprover(auto_approve=args.auto_approve),
        session,
        cwd,
        limits=limits,
        enabled=parse_tool_list(args.enabled_tools),
        disabled=parse_tool_list(args.disabled_tools),
    )
    return Run(agent, provider, session, model, mode, cwd, loaded)


def _provider(
    args: argparse.Namespace,
    model: ModelConfig,
    provider_config: ProviderConfig,
    loaded: LoadedConfig,
    secrets: list[str],
) -> Provider:
    if getattr(args, "replay", None):
        from vibe.providers.recording import ReplayProvider

        provider: Provider = ReplayProvider(Path(args.replay))
    else:
        from vibe.providers.factory import make_provider

        provider = make_provider(model, provider_config, loaded)
    if getattr(args, "record", None):
        from vibe.providers.recording import RecordingProvider

        provider = RecordingProvider(provider, Path(args.record), secrets)
    return provider


class _Redact(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = ()
        if record.exc_info:
            import traceback

            text = "".join(traceback.format_exception(*record.exc_info))
            record.msg += "\n" + redact(text, self.secrets)
            record.exc_info = None
        return True


def setup_logging(home: Path, secrets: list[str]) -> None:
    """Log to $VIBE_HOME/logs/vibe.log (never to the terminal), secrets redacted."""
    root = logging.getLogger("vibe")
    if any(getattr(h, "_vibe", False) for h in root.handlers):
        return
    try:
        (home / "logs").mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(home / "logs" / "vibe.log", encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler._vibe = True  # type: ignore[attr-defined]
    handler.addFilter(_Redact(secrets))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("tools").addHandler(handler)
