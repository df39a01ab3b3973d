"""Embedded inference engine for Mistral-family (and Llama) checkpoints; imports torch lazily.

Public API: Engine, SamplingParams, sample, probs, the chat events (TextDelta, ReasoningDelta,
ToolCallEvent, Usage, Finished), Timings and EngineError.
"""

from __future__ import annotations

from typing import Any

from engine.errors import EngineError
from engine.events import (
    ChatEvent,
    Finished,
    ReasoningDelta,
    TextDelta,
    Timings,
    ToolCallEvent,
    Usage,
)

__all__ = [
    "ChatEvent",
    "Engine",
    "EngineError",
    "Finished",
    "ReasoningDelta",
    "SamplingParams",
    "TextDelta",
    "Timings",
    "ToolCallEvent",
    "Usage",
    "probs",
    "sample",
]


def __getattr__(name: str) -> Any:
    # Engine and sampling import torch; keep `import engine` cheap for the app.
    if name == "Engine":
        from engine.engine import Engine

        return Engine
    if name in ("SamplingParams", "sample", "probs"):
        from engine import sampling

        return getattr(sampling, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
