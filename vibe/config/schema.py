"""Pydantic models of config.toml: providers, models, tools, modes. Frozen, unknown keys rejected."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from vibe.mcp.config import McpServer

Thinking = Literal["off", "low", "medium", "high"]
Permission = Literal["always", "ask", "never"]
Safety = Literal["safe", "neutral", "destructive", "yolo"]

# The names a [tools.NAME] table may have: the built-in tools, and names reserved for tools
# to come. A misspelt table (`[tools.Bash]`) would protect nothing, so it is an error.
BUILTIN_TOOL_NAMES = ("bash", "read_file", "write_file", "edit", "grep", "todo", "web_fetch")
RESERVED_TOOL_NAMES = ("skill", "task", "ask_user_question", "exit_plan_mode")
KNOWN_TOOL_NAMES = BUILTIN_TOOL_NAMES + RESERVED_TOOL_NAMES
MAX_TIMEOUT_S = 86_400.0  # a day: larger values are typos (or `inf`), not intentions


def _known_tool(name: str, info: ValidationInfo) -> str:
    if name not in KNOWN_TOOL_NAMES and not _mcp_tool(name, info):
        close = difflib.get_close_matches(name.lower(), KNOWN_TOOL_NAMES, n=1, cutoff=0.6)
        hint = (
            f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(KNOWN_TOOL_NAMES)}"
        )
        raise ValueError(f"unknown tool {name!r}{hint}")
    return name


def _mcp_tool(name: str, info: ValidationInfo) -> bool:
    """`[tools.<server>_<tool>]` of an MCP server configured in this file (declared before
    `tools`) or in another layer (the loader passes their names as context)."""
    servers = [getattr(s, "name", "") for s in (info.data or {}).get("mcp_servers", ())]
    servers += list((info.context or {}).get("mcp_servers", ()))
    return any(s and name.startswith(s + "_") for s in servers)


def _header_name(name: str) -> str:
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        raise ValueError(f"not a valid HTTP header name: {name!r}")
    return name


def _header_value(value: str) -> str:
    if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
        raise ValueError("a header value must not contain CR, LF or other control characters")
    if not value.isascii():
        raise ValueError("a header value must be ASCII")
    return value


ToolName = Annotated[str, AfterValidator(_known_tool)]
HeaderName = Annotated[str, AfterValidator(_header_name)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]


def _timeout(default: float, *, allow_zero: bool = False, description: str = "") -> float:
    """A field of seconds: finite, positive (or zero where allowed) and at most a day."""
    bounds = {"ge": 0} if allow_zero else {"gt": 0}
    return Field(  # type: ignore[no-any-return]
        default=default,
        le=MAX_TIMEOUT_S,
        allow_inf_nan=False,
        description=description,
        **bounds,
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Strict):
    """Where models are served and how to talk to them."""

    name: str = Field(description="Name that [[models]] entries refer to.")
    # backend comes before api_base: the api_base check depends on it.
    backend: Literal["mistral", "generic", "local"] = Field(
        default="generic", description="mistral: Mistral API; generic: OpenAI-compatible; local."
    )
    api_base: str = Field(default="", description="Base URL ending in /v1 (remote backends).")
    api_key_env_var: str = Field(
        default="", description="Environment variable holding the key; empty: no auth header."
    )
    api_style: Literal["openai", "reasoning"] = Field(
        default="openai", description="reasoning: the server streams reasoning separately."
    )
    reasoning_field_name: str = Field(
        default="reasoning_content", description="Delta field carrying reasoning (generic)."
    )
    extra_headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, description="Headers added to every request."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, description="local: GPUs to shard over.")
    device: str | None = Field(default=None, description="local: cuda, cpu, cuda:1 (auto).")
    dtype: Literal["float32", "float16", "bfloat16"] | None = Field(
        default=None, description="local: weights dtype (auto: bf16 on CUDA, fp32 on CPU)."
    )

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        """Remote backends need an http(s) URL; empty is reported when the provider is used."""
        if not value or info.data.get("backend") == "local":
            return value
        if re.search(r"[\x00-\x20\x7f]", value):
            raise ValueError("an api_base must not contain spaces or control characters")
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise ValueError("an api_base must be an http:// or https:// URL")
        return value

    @field_validator("api_key_env_var")
    @classmethod
    def _env_var_name(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("not an environment variable name")
        return value


class ModelConfig(_Strict):
    """A model reachable through a provider, selected by its alias."""

    name: str = Field(description="API model id, or a checkpoint path for local providers.")
    provider: str = Field(description="Name of a [[providers]] entry.")
    alias: str = Field(default="", description="Short name used by active_model and --model.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    thinking: Thinking = "off"
    input_price: float = Field(default=0.0, ge=0, description="USD per million input tokens.")
    output_price: float = Field(default=0.0, ge=0, description="USD per million output tokens.")
    auto_compact_threshold: int | None = Field(default=None, gt=0)
    max_context_length: int | None = Field(default=None, gt=0)
    supports_images: bool = False
    max_output_tokens: int = Field(
        default=32_768, gt=0, description="Cap on each answer (sent as the request's max_tokens)."
    )
    speculative_model: str | None = Field(default=None, description="local: EAGLE head path.")
    num_speculative_tokens: int = Field(default=3, ge=1, le=16)
    quantize: Literal["int8", "int4"] | None = Field(
        default=None, description="local: quantize a float checkpoint's weights at load (CPU)."
    )

    @property
    def key(self) -> str:
        return self.alias or self.name

    def compact_threshold(self) -> int:
        """Tokens at which the context is compacted (room is kept for answer and summary)."""
        if self.auto_compact_threshold:
            return self.auto_compact_threshold
        if self.max_context_length:
            # Keep 15% + 8k for the answer and the summary request; small windows use half.
            window = self.max_context_length
            return max(window // 2, int(window * 0.85) - 8192)
        return 200_000


class ToolConfig(_Strict):
    """[tools.NAME]: permission and tool-specific settings."""

    permission: Permission | None = None
    allowlist: tuple[str, ...] = ()
    denylist: tuple[str, ...] = ()
    default_timeout: int | None = Field(
        default=None, gt=0, le=int(MAX_TIMEOUT_S), description="bash, web_fetch: seconds."
    )
    env_passthrough: tuple[str, ...] = Field(
        default=(),
        description="bash: variables passed to commands although their names look secret.",
    )


class ModeConfig(_Strict):
    """An agent profile; Shift+Tab cycles them. A mode with active_model switches the model."""

    name: str = ""
    display_name: str = ""
    description: str = ""
    safety: Safety = "neutral"
    active_model: str | None = None
    enabled_tools: tuple[str, ...] | None = None
    disabled_tools: tuple[str, ...] = ()
    system_prompt: str | None = None
    tools: dict[ToolName, ToolConfig] = Field(default_factory=dict)
    # agents/*.toml: "subagent" makes it a profile for the `task` tool instead of a mode.
    agent_type: Literal["agent", "subagent"] = "agent"
    max_turns: int | None = Field(default=None, gt=0, description="subagent: turn limit (30).")


class VibeConfig(_Strict):
    """The whole configuration. Top-level display_name/description/safety define a mode."""

    display_name: str | None = None
    description: str | None = None
    safety: Safety | None = None
    active_model: str = "devstral-medium"
    providers: tuple[ProviderConfig, ...] = ()
    models: tuple[ModelConfig, ...] = ()
    # Before `tools`: [tools.<server>_<tool>] tables are checked against these names.
    mcp_servers: tuple[McpServer, ...] = ()
    tools: dict[ToolName, ToolConfig] = Field(default_factory=dict)
    api_retry_max_elapsed_time: float = _timeout(300.0, allow_zero=True)
    api_connect_timeout: float = _timeout(10.0)
    api_read_timeout: float = _timeout(120.0)
    api_stream_idle_timeout: float = _timeout(
        120.0, description="Seconds without new answer data before a stream counts as stalled."
    )
    api_response_timeout: float = _timeout(
        600.0, description="Seconds one response may take in all, however steady."
    )
    max_tool_output_bytes: int = Field(default=30_000, gt=0)
    outside_workdir: Literal["ask", "deny"] = Field(
        default="ask",
        description="Paths outside the working folder and --add-dir folders: ask or deny.",
    )
    skill_paths: tuple[str, ...] = Field(
        default=(),
        description="More folders searched for skills (before the project's and $VIBE_HOME's).",
    )
    theme: str | None = Field(default=None, description="The TUI's Textual theme (/theme).")
    notifications: Literal["auto", "bell", "osc9", "off"] = Field(
        default="auto",
        description="How the TUI gets your attention when the terminal is not focused.",
    )

    def provider(self, name: str) -> ProviderConfig | None:
        return next((p for p in self.providers if p.name == name), None)

    def model(self, alias: str) -> ModelConfig | None:
        found = next((m for m in self.models if m.key == alias), None)
        return found or next((m for m in self.models if m.name == alias), None)

    def top_level_mode(self) -> ModeConfig | None:
        if not self.display_name:
            return None
        return ModeConfig(
            name=slug(self.display_name),
            display_name=self.display_name,
            description=self.description or "",
            safety=self.safety or "neutral",
            active_model=self.active_model,
        )


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "mode"
