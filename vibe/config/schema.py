"""Pydantic models of config.toml: providers, models, tools, modes. Frozen, unknown keys rejected."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Thinking = Literal["off", "low", "medium", "high"]
Permission = Literal["always", "ask", "never"]
Safety = Literal["safe", "neutral", "destructive", "yolo"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Strict):
    """Where models are served and how to talk to them."""

    name: str = Field(description="Name that [[models]] entries refer to.")
    api_base: str = Field(default="", description="Base URL ending in /v1 (remote backends).")
    api_key_env_var: str = Field(
        default="", description="Environment variable holding the key; empty: no auth header."
    )
    backend: Literal["mistral", "generic", "local"] = Field(
        default="generic", description="mistral: Mistral API; generic: OpenAI-compatible; local."
    )
    api_style: Literal["openai", "reasoning"] = Field(
        default="openai", description="reasoning: the server streams reasoning separately."
    )
    reasoning_field_name: str = Field(
        default="reasoning_content", description="Delta field carrying reasoning (generic)."
    )
    extra_headers: dict[str, str] = Field(
        default_factory=dict, description="Headers added to every request."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, description="local: GPUs to shard over.")
    device: str | None = Field(default=None, description="local: cuda, cpu, cuda:1 (auto).")
    dtype: Literal["float32", "float16", "bfloat16"] | None = Field(
        default=None, description="local: weights dtype (auto: bf16 on CUDA, fp32 on CPU)."
    )


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
    speculative_model: str | None = Field(default=None, description="local: EAGLE head path.")
    num_speculative_tokens: int = Field(default=3, ge=1, le=16)

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
    default_timeout: int | None = Field(default=None, gt=0, description="bash: seconds.")


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
    tools: dict[str, ToolConfig] = Field(default_factory=dict)


class VibeConfig(_Strict):
    """The whole configuration. Top-level display_name/description/safety define a mode."""

    display_name: str | None = None
    description: str | None = None
    safety: Safety | None = None
    active_model: str = "devstral-medium"
    providers: tuple[ProviderConfig, ...] = ()
    models: tuple[ModelConfig, ...] = ()
    tools: dict[str, ToolConfig] = Field(default_factory=dict)
    api_retry_max_elapsed_time: float = Field(default=300.0, ge=0)
    api_connect_timeout: float = Field(default=10.0, gt=0)
    api_read_timeout: float = Field(default=120.0, gt=0)
    api_stream_idle_timeout: float = Field(default=120.0, gt=0)
    max_tool_output_bytes: int = Field(default=30_000, gt=0)

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
