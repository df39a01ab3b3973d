"""The `task(task, agent="explore")` tool: hands a self-contained job to a subagent and
returns its final answer, the turns it used and whether it completed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tools.base import Tool, ToolContext, ToolError, ToolResult
from vibe.subagents.profiles import describe, read_only_profile, subagent_profiles

DESCRIPTION = (
    "Delegate a self-contained job to a subagent that works in a fresh conversation with its "
    "own tools and returns only its final answer: use it to explore a large codebase, search "
    "widely or review something without filling your own context. Give the complete task "
    "(the subagent sees nothing of this conversation) and say what the answer must contain. "
    "Several task calls in one reply run at the same time. Subagents: {agents}."
)


class TaskArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(
        min_length=1, description="The complete job for the subagent, with all context it needs."
    )
    agent: str = Field(default="explore", description="Which subagent runs it.")


class TaskTool(Tool):
    name = "task"
    description = DESCRIPTION
    Args = TaskArgs
    # Read-only subagents (explore) run concurrently with each other, not beside an edit (they
    # may read anything the parent may); one that may write or run non-read-only
    # bash/MCP tools is a barrier like bash (see `access_for`, vibe.agent.footprint).
    access = "none"

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded
        self.profiles = subagent_profiles(loaded)
        self.description = DESCRIPTION.format(agents=describe(self.profiles))

    def access_for(self, arguments: Any) -> str:
        """ "read_any" for a read-only subagent: several run at once, but never beside an edit
        they could read half-done (anywhere: extra folders, symlinks, read-only bash); "any"
        (a barrier) otherwise."""
        name = arguments.get("agent", "explore") if isinstance(arguments, dict) else None
        profile = self.profiles.get(name) if isinstance(name, str) else None
        if profile is None:
            return "none"  # rejected without running a child
        return "read_any" if read_only_profile(profile) else "any"

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, TaskArgs)
        profile = self.profiles.get(args.agent)
        if profile is None:
            known = ", ".join(sorted(self.profiles))
            raise ToolError(f"unknown subagent {args.agent!r}; available: {known}")
        if ctx.host is None:
            raise ToolError("the task tool runs only inside an agent")
        from vibe.subagents.runner import run_child

        return await run_child(ctx.host, self.loaded, profile, args.task, ctx)
