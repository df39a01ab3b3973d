"""The Mistral API (`backend = "mistral"`): OpenAI-style chat completions where reasoning comes
as `thinking` blocks inside a list-valued `delta.content` and `thinking` maps to
`reasoning_effort`. Only the differences from openai_compat live here."""

from __future__ import annotations

from vibe.providers.base import ChatRequest
from vibe.providers.openai_compat import OpenAICompatProvider
from vibe.providers.wire import ImageStyle

# The API takes reasoning_effort "none" | "high"; any thinking level asks for reasoning.
_EFFORT = {"low": "high", "medium": "high", "high": "high"}


class MistralProvider(OpenAICompatProvider):
    """`https://api.mistral.ai/v1/chat/completions`; usage comes in the last chunk unasked."""

    def reasoning_effort(self, thinking: str) -> str | None:
        return _EFFORT.get(thinking)

    def stream_options(self) -> None:
        return None

    def image_style(self) -> ImageStyle:
        """Mistral's `image_url` part carries the data URL as a plain string."""
        return "mistral" if self.model.supports_images else "none"

    def sends_reasoning_back(self, request: ChatRequest) -> bool:
        # Thinking blocks go back only to a model asked to think.
        return request.thinking != "off"
