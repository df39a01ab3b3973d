"""Subagent profiles: ModeConfig entries with agent_type = "subagent". The built-in `explore`
reads and searches (read_file, grep, read-only bash) under plan-mode permissions."""

from __future__ import annotations

from vibe.config.loader import LoadedConfig
from vibe.config.schema import ModeConfig

DEFAULT_MAX_TURNS = 30
NO_NESTING = ("task",)  # a subagent never gets the task tool

EXPLORE_PROMPT = """\
You are `explore`, a read-only subagent of a coding agent. You get one self-contained task:
find out something about the code in the working directory and report back.

- Use grep to locate things and read_file to read them; bash only for read-only commands
  (ls, find, git log, git show, wc, ...). You cannot change anything: do not try.
- Be efficient: search first, then read only what matters.
- Your final answer is all the main agent sees of your work: make it complete on its own.
  Name files with paths and line numbers, quote the key lines, and say what you could not find.
"""

EXPLORE = ModeConfig(
    name="explore",
    display_name="Explore",
    description="Read-only exploration of the codebase: finds files, reads code, answers questions.",
    safety="safe",
    enabled_tools=("read_file", "grep", "bash"),
    system_prompt=EXPLORE_PROMPT,
    agent_type="subagent",
)


def subagent_profiles(loaded: LoadedConfig) -> dict[str, ModeConfig]:
    """Every subagent by name: the built-ins, then the user's (which may replace one)."""
    out = {EXPLORE.name: EXPLORE}
    for profile in getattr(loaded, "subagents", ()):
        out[profile.name] = profile
    return out


def describe(profiles: dict[str, ModeConfig]) -> str:
    return "; ".join(
        f"{name}: {p.description or p.display_name or name}" for name, p in profiles.items()
    )


def read_only_profile(profile: ModeConfig) -> bool:
    """Whether a child of `profile` can change nothing: it runs under plan-mode permissions
    (safety = "safe", see vibe.subagents.runner._policy), or its tools are all read-only."""
    if profile.safety == "safe":
        return True
    if profile.enabled_tools is None:
        return False  # every tool, bash and writes included
    from tools.permissions import READ_TOOLS

    tools = set(profile.enabled_tools) - set(profile.disabled_tools) - set(NO_NESTING)
    return tools <= READ_TOOLS
