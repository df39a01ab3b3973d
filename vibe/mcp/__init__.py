"""MCP client: `[[mcp_servers]]` config, one long-lived connection per server, adapter tools.

Light on import: vibe.mcp.config needs only pydantic; the `mcp` SDK is imported by
vibe.mcp.manager when a session starts servers, never by `vibe --help` or the TUI's first frame."""
