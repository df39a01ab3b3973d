"""`vibe acp`: the Agent Client Protocol server that editors (Zed, JetBrains) start as a
subprocess. It maps ACP onto the same agent and event stream as the TUI and `vibe run`:
server (entry, stdio), agent (the protocol methods), session (one live vibe session),
updates (events → session/update), permissions (approvals, plan review), files (fs/*),
mcp (the client's MCP servers). The `acp` SDK is imported only here, never by `vibe --help`."""
