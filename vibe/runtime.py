"""The live runtime of an interactive session (the TUI and `vibe acp`): vibe.build assembles
the agent (the same builder `vibe run` uses); Runtime adds switching mode and model mid-session,
closing the providers it replaced, and the rewind checkpoints of each user turn (vibe.rewind).
Tests pass `provider_factory` to serve the models."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vibe.agent.approval import Approver
from vibe.agent.interaction import Interaction
from vibe.build import (
    ProviderFactory,
    Run,
    assemble,
    build_tools,
    default_provider,
    mode_policy,
    pick_mode,
    system_prompt,
)
from vibe.config import LoadedConfig, ModeConfig
from vibe.mcp.session import McpBinding
from vibe.providers.base import Provider
from vibe.rewind import Checkpoints
from vibe.session import Session


@dataclass
class Runtime(Run):
    """One live session: the Run plus what switching needs."""

    provider_factory: ProviderFactory = default_provider
    retired: list[Provider] = field(default_factory=list)  # closed once no stream uses them
    checkpoints: Checkpoints | None = None  # pre-images of the files write_file/edit change

    @property
    def modes(self) -> list[ModeConfig]:
        return self.loaded.modes

    def begin_turn(self, text: str) -> None:
        """A user message is about to run (`text`: what the user typed): a new session takes it
        as its title, and the files write_file/edit change from now on (a subagent's too) are
        kept under this message so /rewind can restore them. Every front end calls this."""
        session = self.session
        if not session.title:
            session.set_title(text)
        if self.checkpoints is not None:  # the user message is the next one saved
            self.checkpoints.begin(len(session.messages), text)

    async def set_mode(self, mode: ModeConfig) -> None:
        """The mode's permissions, tools (enabled_tools/disabled_tools) and system prompt; a mode
        with active_model also switches the model. The history is kept. Everything is built
        before anything changes: a bad mode leaves the session as it was."""
        extras = self.extras
        policy = mode_policy(self.loaded, mode, self.add_dirs, extras)
        tools = build_tools(self.loaded, mode, extras=extras.tools_for(mode) if extras else None)
        skills = extras.skills if extras else None
        # git status for the prompt's environment section: not on the UI thread
        prompt = await asyncio.to_thread(
            system_prompt, self.loaded, self.cwd, mode, list(tools), self.add_dirs, skills
        )
        if mode.active_model and mode.active_model != self.model.key:
            await self.set_model(mode.active_model)
        self.agent.set_policy(policy)
        self.agent.set_tools(tools)
        if self.mcp is not None:  # the MCP tools, as the new mode selects them
            self.mcp.mode = mode
            self.mcp.sync()
        self.agent.set_system_prompt(prompt)
        if extras is not None:  # plan mode starts or ends: the model is told with the next prompt
            extras.mode_changed(self.mode, mode)
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
        """Close the providers a mode or model switch replaced, unless a turn is running (it
        may still stream from one): every front end calls this again when a turn ends."""
        if not self.agent.running:
            await self._close_all_retired()

    async def _close_all_retired(self) -> None:
        while self.retired:
            await self.retired.pop().aclose()

    async def aclose(self) -> None:
        if self.mcp is not None:
            await self.mcp.aclose()
        await self._close_all_retired()
        await self.agent.provider.aclose()


def build_runtime(
    loaded: LoadedConfig,
    cwd: Path,
    approver: Approver,
    *,
    model_alias: str | None = None,
    mode_name: str | None = None,
    session: Session | None = None,
    provider_factory: ProviderFactory = default_provider,
    add_dirs: tuple[Path, ...] = (),
    warn: Callable[[str], None] | None = None,
    mcp: McpBinding | None = None,
    interaction: Interaction | None = None,
) -> Runtime:
    """--agent/--model as for `vibe run`; a resumed session keeps its model unless the mode or
    --model names one. Raises ConfigError/UsageError (one line each) for bad input."""
    mode = pick_mode(loaded, mode_name)
    alias = model_alias or mode.active_model or (session.meta.get("model") if session else None)
    run = assemble(
        loaded,
        cwd,
        approver,
        mode,
        model_alias=alias or None,
        session=session,
        provider_factory=provider_factory,
        dirs=add_dirs,
        warn=warn,
        mcp=mcp,
        interaction=interaction,
    )
    checkpoints = Checkpoints(run.session.path, cwd)
    run.agent.settings.before_run = checkpoints.before_write  # /rewind can restore the files
    return Runtime(**vars(run), provider_factory=provider_factory, checkpoints=checkpoints)
