"""Subagents: the `task(task, agent="explore")` tool runs a child agent with its own history,
system prompt and tools, and returns its final answer (vibe.subagents.tool). Profiles: the
built-in read-only `explore`, and `$VIBE_HOME/agents/*.toml` with `agent_type = "subagent"`
(vibe.subagents.profiles). The child's usage counts in the parent's totals and limits
(vibe.subagents.budget); its events reach the parent's stream as SubagentEvent."""

from vibe.subagents.profiles import EXPLORE, subagent_profiles
from vibe.subagents.tool import TaskTool

__all__ = ["EXPLORE", "TaskTool", "subagent_profiles"]
