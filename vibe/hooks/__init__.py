"""Hooks: user commands run before and after tool calls and at the end of an agent turn.

`hooks.toml` in $VIBE_HOME and in a trusted project's `.vibe/` (Mistral Vibe 3.0's format,
see vibe.hooks.config); the wire protocol and the reply semantics are in vibe.hooks.runner;
vibe.hooks.manager is what the agent loop calls."""

from vibe.hooks.config import HookConfig, load_hooks
from vibe.hooks.manager import Hooks, PreToolOutcome, hooks_for

__all__ = ["HookConfig", "Hooks", "PreToolOutcome", "hooks_for", "load_hooks"]
