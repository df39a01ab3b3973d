"""hooks.toml: `[[hooks]]` tables with `name`, `type` (pre_tool | post_tool | post_agent, or
2.18's before_tool | after_tool | post_agent_turn), `match` (a glob on the tool name),
`command`, `timeout` (seconds, 60), `strict` (false), `description`; validated with pydantic.
Read from $VIBE_HOME/hooks.toml, then the nearest `.vibe/hooks.toml` between the working folder
and the project root, only when that folder is trusted. A bad file is a ConfigError naming the
file and the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vibe.config.loader import LoadedConfig, _read_toml, _validate
from vibe.config.trust import project_root

HookType = Literal["pre_tool", "post_tool", "post_agent"]
HOOK_TYPE_ALIASES = {
    "before_tool": "pre_tool",
    "after_tool": "post_tool",
    "post_agent_turn": "post_agent",
}
HOOKS_FILE = "hooks.toml"


class HookConfig(BaseModel):
    """One `[[hooks]]` entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    type: HookType
    match: str = Field(default="*", description="Glob on the tool name (tool hooks).")
    command: str = Field(min_length=1, description="Run with bash in the working folder.")
    timeout: float = Field(default=60.0, gt=0, le=86_400, allow_inf_nan=False)
    strict: bool = Field(default=False, description="A failing hook denies instead of passing.")
    description: str = ""
    enabled: bool = True
    source: str = Field(default="", exclude=True)  # the file it came from (set by the loader)

    @field_validator("type", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return HOOK_TYPE_ALIASES.get(value, value) if isinstance(value, str) else value


class HooksFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hooks: tuple[HookConfig, ...] = ()


def hook_files(loaded: LoadedConfig, cwd: Path) -> list[Path]:
    """The hooks.toml files that apply: the user's, then the trusted project's nearest."""
    files = [loaded.home / HOOKS_FILE]
    if loaded.trusted:
        cwd = cwd.resolve()
        root = loaded.project_dir or project_root(cwd)
        for folder in (cwd, *cwd.parents):
            candidate = folder / ".vibe" / HOOKS_FILE
            if candidate.is_file():
                files.append(candidate)
                break
            if folder == root or not folder.is_relative_to(root):
                break
    return [f for f in files if f.is_file()]


def read_hooks_file(path: Path) -> list[HookConfig]:
    """One file's enabled hooks; ConfigError (file, key path) when it is not valid."""
    raw = _read_toml(path)
    parsed: HooksFile = _validate(HooksFile, raw, path)
    return [h.model_copy(update={"source": str(path)}) for h in parsed.hooks if h.enabled]


def load_hooks(loaded: LoadedConfig, cwd: Path) -> list[HookConfig]:
    """Every hook that applies in `cwd`, user hooks first (an untrusted project has none)."""
    out: list[HookConfig] = []
    for path in hook_files(loaded, cwd):
        out.extend(read_hooks_file(path))
    return out
