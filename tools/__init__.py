"""The agent's tools and the permission model they share (imports only stdlib, pydantic, bashlex).

Public API (used by the agent loop; stable):

    from tools.base import Tool, ToolContext, ToolResult, ToolError, tool_schema, parse_args
    from tools.registry import builtin_tools
    from tools.permissions import (
        Permission, ToolPolicy, PermissionPolicy, Verdict, SessionRule,
        evaluate, default_policy, tool_policies, session_pattern,
    )

    ToolContext(cwd: Path, on_output: Callable[[str], None] | None = None,
                cancel: asyncio.Event | None = None)
    ToolResult(text: str, ok: bool = True, diff: str | None = None, data: dict | None = None)
    ToolError(message)                  raised for bad usage; the loop shows str(exc) to the model
    Tool: name, description, Args (pydantic model, extra="forbid"); async run(args, ctx)
    tool_schema(tool) -> {"type": "function", "function": {"name", "description", "parameters"}}
    parse_args(tool, raw_json: str | Mapping) -> BaseModel     raises ToolError
    builtin_tools(settings=None, hidden_env=(), *, output_cap=None) -> dict[str, Tool]   settings:
        the [tools.NAME] tables; bash reads default_timeout (300 s) and env_passthrough; raises
        ValueError for a bad value. hidden_env: variable names bash commands never see (besides
        *KEY*/*SECRET*/*TOKEN*/*PASSWORD*/*PASSWD*/*CREDENTIAL* and AWS credentials, see
        tools._proc.shell_env). Fresh instances per call (todo keeps its list per instance).
    tool_policies(settings=None) -> dict[str, ToolPolicy]   defaults + permission/allowlist/denylist
        from [tools.NAME]; raises ValueError for bad values.
    evaluate(tool_name, args, policy, cwd, session_rules=()) -> Verdict(action, reason)
        action: "allow" | "ask" | "deny"; session_rules: iterable of (tool_name, pattern).
    session_pattern(tool_name, args, cwd=None, policy=None) -> str   e.g. "git push *" or "src/*"; feed back as a SessionRule.

Tools: bash(command, timeout?) · read_file(path, offset?, limit?) · write_file(path, content) ·
edit(path, old_string, new_string, replace_all=false) · grep(pattern, path?, glob?, max_matches?) ·
todo(todos). Results: bash data {"exit_code", "timed_out", "cancelled", ...}; write_file/edit
set `diff`; todo data {"todos": [{"id", "content", "status"}]}.
"""
