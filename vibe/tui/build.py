"""The TUI's composition root: config → provider, tools, policy, session → Agent, wrapped in a
Runtime that can switch mode and model and start or resume sessions. Tests use this same builder
with `provider_factory` pointed at the fake server or the scripted provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools.registry import builtin_tools
from vibe.agent.approval import Approver
from vibe.agent.loop import Agent, AgentSettings
from vibe.agent.policy import build_policy, save_always, select_tools
from vibe.agent.prompts import build_system_prompt
from vibe.config import LoadedConfig, ModeConfig, ModelConfig, ProviderConfig
from vibe.errors import ConfigError
from vibe.providers.base import Provider
from vibe.providers.factory import make_provider
from vibe.session import Session
from vibe.tui.modes import initial_mode

ProviderFactory = Callable[[ModelConfig, ProviderConfig, LoadedConfig], Provider]


@dataclass
class Runtime:
    """One live session: the agent plus what it was built from."""

    loaded: LoadedConfig
    cwd: Path
    agent: Agent
    session: Session
    mode: ModeConfig
    model: ModelConfig
    approver: Approver
    provider_factory: ProviderFactory
    retired: list[Provider] = field(default_factory=list)  # closed once no stream uses them

    @property
    def modes(self) -> list[ModeConfig]:
        return self.loaded.modes

    async def set_mode(self, mode: ModeConfig) -> None:
        """New permissions; a mode with active_model also switches the model (history kept)."""
        if mode.active_model and mode.active_model != self.model.key:
            await self.set_model(mode.active_model)
        self.agent.set_policy(build_policy(self.loaded.config, mode))
        self.mode = mode

    async def set_model(self, alias: str) -> None:
        model, pconf = self.loaded.resolve_model(alias)
        provider = self.provider_factory(model, pconf, self.loaded)
        old = self.agent.provider
        self.agent.set_model(model, provider)
        self.model = model
        self.session.save_meta(model=model.key)
        if old is not provider:
            self.retired.append(old)

    async def close_retired(self) -> None:
        while self.retired:
            await self.retired.pop().aclose()

    async def aclose(self) -> None:
        await self.close_retired()
        await self.agent.provider.aclose()


def secrets_of(loaded: LoadedConfig) -> list[str]:
    """Every configured API key, so sessions never store them."""
    keys = (loaded.api_key(p) for p in loaded.config.providers)
    return [k for k in keys if k]


def build_runtime(
    loaded: LoadedConfig,
    cwd: Path,
    approver: Approver,
    *,
    model_alias: str | None = None,
    mode_name: str | None = None,
    session: Session | None = None,
    provider_factory: ProviderFactory = make_provider,
) -> Runtime:
    """Build the agent; raises ConfigError/UsageError (one line each) for bad input."""
    mode = initial_mode(loaded, mode_name)
    alias = model_alias or mode.active_model or (session.meta.get("model") if session else None)
    model, pconf = loaded.resolve_model(alias or None)
    try:
        tools = select_tools(builtin_tools(_tool_settings(loaded)), mode)
    except ValueError as exc:
        raise ConfigError(str(loaded.config_file), "tools", str(exc)) from exc
    provider = provider_factory(model, pconf, loaded)
    if session is None:
        session = Session.create(loaded.home, cwd, model=model.key, secrets=secrets_of(loaded))
    settings = AgentSettings(
        model=model,
        policy=build_policy(loaded.config, mode),
        cwd=cwd,
        system_prompt=build_system_prompt(
            cwd, list(tools), trusted=loaded.trusted, mode_prompt=mode.system_prompt
        ),
        max_tool_output_bytes=loaded.config.max_tool_output_bytes,
        on_always=lambda name, pattern: save_always(loaded.config_file, name, pattern),
    )
    agent = Agent(provider, tools, approver, settings, session)
    return Runtime(loaded, cwd, agent, session, mode, model, approver, provider_factory)


def _tool_settings(loaded: LoadedConfig) -> dict[str, dict]:
    return {
        name: cfg.model_dump(exclude_none=True, exclude_defaults=True)
        for name, cfg in loaded.config.tools.items()
    }
