"""The MCP servers an ACP client passes to session/new and session/load, as our
`[[mcp_servers]]` entries (vibe.mcp.config), added to those of config.toml."""

from __future__ import annotations

import dataclasses
from typing import Any

from vibe.config import LoadedConfig
from vibe.errors import UsageError
from vibe.mcp.config import McpHttp, McpServer, McpStdio, normalize_name


def convert(server: Any) -> McpServer:
    """One ACP McpServer (stdio, http or sse) → McpStdio / McpHttp; UsageError if invalid."""
    from pydantic import ValidationError

    try:
        if getattr(server, "type", None) in ("http", "sse"):
            headers = {h.name: h.value for h in server.headers or []}
            return McpHttp(name=server.name, transport=server.type, url=server.url, headers=headers)
        if getattr(server, "command", None) is not None:
            env = {e.name: e.value for e in server.env or []}
            return McpStdio(
                name=server.name, command=(server.command,), args=tuple(server.args), env=env
            )
    except ValidationError as exc:
        problem = "; ".join(e["msg"] for e in exc.errors())
        raise UsageError(f"MCP server {server.name!r}: {problem}") from None
    raise UsageError(f"MCP server {getattr(server, 'name', '?')!r}: unsupported transport")


def with_client_servers(loaded: LoadedConfig, servers: list[Any] | None) -> LoadedConfig:
    """`loaded` with the client's servers added; one with a config server's name replaces it."""
    if not servers:
        return loaded
    extra = [convert(s) for s in servers]
    names = {normalize_name(s.name) for s in extra}
    kept = [s for s in loaded.config.mcp_servers if s.name not in names]
    config = loaded.config.model_copy(update={"mcp_servers": (*kept, *extra)})
    return dataclasses.replace(loaded, config=config)
