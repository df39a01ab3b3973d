"""Wiring MCP into a session: the manager for the config's servers, its tools merged into the
agent's (narrowed by the mode and --enabled-tools/--disabled-tools), failures shown once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from vibe.mcp.manager import McpManager

if TYPE_CHECKING:
    from vibe.agent.loop import Agent
    from vibe.config import LoadedConfig, ModeConfig


class McpBinding:
    """The session's MCP servers and how their tools reach the agent."""

    def __init__(
        self,
        manager: McpManager,
        mode: ModeConfig,
        enabled: list[str] | None = None,
        disabled: Iterable[str] = (),
    ) -> None:
        self.manager = manager
        self.mode = mode
        self.enabled = enabled
        self.disabled = list(disabled)
        self.agent: Agent | None = None

    def start(self) -> bool:
        """Start the servers in the background when a loop runs (idempotent)."""
        return self.manager.start()

    async def before_turn(self) -> None:
        """The agent's hook before a turn's first model call: wait only for servers still
        inside their startup timeout, then offer the tools of those that are up."""
        await self.manager.wait_started()
        self.sync()

    def tools(self) -> dict[str, Any]:
        from vibe.agent.policy import select_tools
        from vibe.mcp.tools import server_tools

        available = server_tools(self.manager)
        return select_tools(available, self.mode, self.enabled, self.disabled, strict=False)

    def sync(self, agent: Agent | None = None) -> None:
        """The agent's tools: its built-ins as they are now plus the MCP tools selected now."""
        from vibe.mcp.tools import McpTool

        agent = agent or self.agent
        if agent is None:
            return
        own = {n: t for n, t in agent.tools.items() if not isinstance(t, McpTool)}
        desired = {**own, **self.tools()}
        if list(desired) != list(agent.tools):
            agent.set_tools(desired)

    async def aclose(self) -> None:
        await self.manager.aclose()


def attach(
    run: Any,
    loaded: LoadedConfig,
    enabled: list[str] | None = None,
    disabled: Iterable[str] = (),
    warn: Callable[[str], None] | None = None,
    existing: McpBinding | None = None,
) -> McpBinding | None:
    """An McpBinding for `run` when the config has MCP servers (None otherwise); the servers
    start now if a loop runs (the TUI), else on the first `start`/turn (`vibe run`).
    `existing`: keep the servers of a replaced runtime (/clear, /resume)."""
    servers = loaded.config.mcp_servers
    if not servers and existing is None:
        return None
    if existing is not None:
        binding = existing
        binding.mode, binding.enabled, binding.disabled = run.mode, enabled, list(disabled)
    else:
        from tools._proc import shell_env
        from vibe.config.secrets import lookup_key

        hidden = {p.api_key_env_var for p in loaded.config.providers if p.api_key_env_var}
        manager = McpManager(
            servers,
            cwd=run.cwd,
            env=shell_env(hidden | {"MISTRAL_API_KEY"}),
            log_dir=loaded.home / "logs",
            key_lookup=lambda name: lookup_key(name, loaded.env_file),
        )
        binding = McpBinding(manager, run.mode, enabled, disabled)
        manager.add_change_listener(lambda: _refresh(binding))
    binding.agent = run.agent
    run.agent.settings.before_turn = binding.before_turn
    if warn is not None:
        binding.manager.set_notice_listener(warn)
    binding.start()
    binding.sync()
    return binding


def _refresh(binding: McpBinding) -> None:
    """A server came up or went away: offer its tools now unless a turn is running."""
    agent = binding.agent
    if agent is not None and (agent._task is None or agent._task.done()):
        binding.sync()


def mcp_secrets(loaded: LoadedConfig) -> list[str]:
    """The keys MCP servers are given (api_key_env, env tables): redacted like API keys."""
    from vibe.config.secrets import lookup_key
    from vibe.mcp.config import McpHttp

    keys: list[str] = []
    for server in loaded.config.mcp_servers:
        if isinstance(server, McpHttp) and server.api_key_env:
            key = lookup_key(server.api_key_env, loaded.env_file)
            if key and len(key) >= 8:
                keys.append(key)
    return keys


async def start_headless(
    run: Any,
    line: Callable[[dict[str, Any]], None] | None,
    note: Callable[[str], None],
) -> None:
    """`vibe run`: start the servers and wait for them (Ctrl-C/SIGTERM stop the wait);
    failures are an `error` event in stream-json (`line`), else a stderr line (`note`)."""
    import asyncio
    import signal

    from vibe.errors import Interrupted

    binding: McpBinding = run.mcp
    if line is not None:
        binding.manager.set_notice_listener(lambda text: line({"type": "error", "message": text}))
    else:
        binding.manager.set_notice_listener(lambda text: note(f"warning: {text}"))
    loop = asyncio.get_running_loop()
    waiting = asyncio.ensure_future(binding.before_turn())
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, waiting.cancel)
    try:
        await waiting
    except asyncio.CancelledError:
        raise Interrupted("interrupted") from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, run.agent.interrupt)
