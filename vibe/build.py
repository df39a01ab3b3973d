"""The composition root: config and flags → mode, model, provider, tools, permissions, session
and system prompt → a ready Agent. `vibe run` uses build_run, the TUI's Runtime wraps assemble,
and tests call the same functions. Imports only config at load time: the TUI's first frame
must not pay for the agent, the tools or the HTTP stack."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vibe.config import LoadedConfig, ModeConfig, ModelConfig, ProviderConfig, load_config
from vibe.config.secrets import redact
from vibe.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from tools.base import Tool
    from vibe.agent.approval import Approver
    from vibe.agent.budget import Limits
    from vibe.agent.loop import Agent
    from vibe.providers.base import Provider
    from vibe.session import Session

ProviderFactory = Callable[[ModelConfig, ProviderConfig, LoadedConfig], "Provider"]


@dataclass
class Run:
    """Everything a run needs, built and wired."""

    agent: Agent  # holds the provider (agent.provider): a model switch replaces it there
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
    from vibe.agent.budget import Limits

    for flag in ("max_turns", "max_tokens", "max_price", "time_limit"):
        value = getattr(args, flag, None)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    return Limits(args.max_turns, args.max_tokens, args.max_price, args.time_limit)


def existing_session(
    loaded: LoadedConfig, cwd: Path, args: argparse.Namespace, secrets: list[str]
) -> Session | None:
    """--resume ID, --continue (the latest here, if any); None means start a new session."""
    from vibe.session import find, latest_for

    if getattr(args, "resume", None):
        return find(args.resume, loaded.home, secrets=secrets)
    if getattr(args, "continue_", False):
        return latest_for(cwd, loaded.home, secrets=secrets)
    return None


def default_provider(model: ModelConfig, pconf: ProviderConfig, loaded: LoadedConfig) -> Provider:
    """The provider the config names (imported only now: httpx, or torch for `local`)."""
    from vibe.providers.factory import make_provider

    return make_provider(model, pconf, loaded)


def build_tools(
    loaded: LoadedConfig,
    mode: ModeConfig,
    enabled: list[str] | None = None,
    disabled: list[str] | None = None,
) -> dict[str, Tool]:
    """The built-in tools with their [tools.NAME] settings, narrowed by the mode and flags."""
    from tools.registry import builtin_tools
    from vibe.agent.policy import select_tools

    try:
        raw = {name: t.model_dump(exclude_none=True) for name, t in loaded.config.tools.items()}
        available = builtin_tools(raw)
    except ValueError as exc:
        raise ConfigError(str(loaded.config_file), "tools", str(exc)) from exc
    return select_tools(available, mode, enabled, disabled or ())


def assemble(
    loaded: LoadedConfig,
    cwd: Path,
    approver: Approver,
    mode: ModeConfig,
    *,
    model_alias: str | None = None,
    session: Session | None = None,
    provider_factory: ProviderFactory = default_provider,
    secrets: list[str] | None = None,
    limits: Limits | None = None,
    enabled: list[str] | None = None,
    disabled: list[str] | None = None,
) -> Run:
    """Mode + model alias (else the mode's, else the config's) → tools, provider, session (a
    new one unless given), Agent. Bad config raises ConfigError before anything is created."""
    from vibe.agent.budget import Limits
    from vibe.agent.loop import Agent, AgentSettings
    from vibe.agent.policy import build_policy, save_always
    from vibe.agent.prompts import build_system_prompt
    from vibe.session import Session

    model, provider_config = loaded.resolve_model(model_alias or mode.active_model)
    tools = build_tools(loaded, mode, enabled, disabled)
    policy = build_policy(loaded.config, mode)
    provider = provider_factory(model, provider_config, loaded)
    if session is None:
        keys = known_secrets(loaded) if secrets is None else secrets
        session = Session.create(loaded.home, cwd, model=model.key, secrets=keys)
    settings = AgentSettings(
        model=model,
        policy=policy,
        cwd=cwd,
        limits=limits or Limits(),
        system_prompt=build_system_prompt(
            cwd, list(tools), trusted=loaded.trusted, mode_prompt=mode.system_prompt
        ),
        max_tool_output_bytes=loaded.config.max_tool_output_bytes,
        on_always=lambda tool, pattern: save_always(loaded.config_file, tool, pattern),
    )
    agent = Agent(provider, tools, approver, settings, session)
    return Run(agent, session, model, mode, cwd, loaded)


def build_run(args: argparse.Namespace, secrets: list[str]) -> Run:
    """Config → Run for `vibe run`; `secrets` is filled in place with every known API key."""
    from vibe.agent.approval import HeadlessApprover
    from vibe.agent.policy import parse_tool_list

    cwd = workdir(args.workdir)
    loaded = load_config(cwd, trust=args.trust)
    secrets.extend(known_secrets(loaded))
    setup_logging(loaded.home, secrets)
    mode = pick_mode(loaded, args.agent)
    limits = limits_from(args)
    return assemble(
        loaded,
        cwd,
        HeadlessApprover(auto_approve=args.auto_approve),
        mode,
        model_alias=args.model,
        session=existing_session(loaded, cwd, args, secrets),
        provider_factory=_run_provider(args, secrets),
        secrets=secrets,
        limits=limits,
        enabled=parse_tool_list(args.enabled_tools),
        disabled=parse_tool_list(args.disabled_tools),
    )


def _run_provider(args: argparse.Namespace, secrets: list[str]) -> ProviderFactory:
    """The config's provider, or --replay FILE instead; --record FILE wraps either."""

    def make(model: ModelConfig, pconf: ProviderConfig, loaded: LoadedConfig) -> Provider:
        if getattr(args, "replay", None):
            from vibe.providers.recording import ReplayProvider

            provider: Provider = ReplayProvider(Path(args.replay))
        else:
            provider = default_provider(model, pconf, loaded)
        if getattr(args, "record", None):
            from vibe.providers.recording import RecordingProvider

            provider = RecordingProvider(provider, Path(args.record), secrets)
        return provider

    return make


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
