"""Conversation data: Message, ToolCall, Image, Usage, and their JSON (de)serialisation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


def parse_arguments(raw: str) -> dict[str, Any] | None:
    """A tool call's raw JSON arguments as an object, or None when they are not a JSON object
    (the one parser: the agent loop, the UIs' transcripts; tools validate with parse_args)."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class ToolCall:
    """A tool invocation requested by the model; `arguments` is the raw JSON text."""

    id: str
    name: str
    arguments: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    def parsed(self) -> dict[str, Any] | None:
        """The arguments as an object (None when they are not one): parse_arguments."""
        return parse_arguments(self.arguments)


@dataclass(frozen=True)
class Image:
    """An image a message carries (an @image attachment, an image read_file or an MCP tool
    returned): base64 `data` of `mime_type`, already scaled down (tools/_image.py)."""

    mime_type: str
    data: str
    name: str = ""
    width: int = 0
    height: int = 0

    @property
    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.data}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mime_type": self.mime_type,
            "data": self.data,
            "name": self.name,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Image:
        return cls(
            mime_type=str(data.get("mime_type") or "image/png"),
            data=str(data.get("data") or ""),
            name=str(data.get("name") or ""),
            width=int(data.get("width") or 0),
            height=int(data.get("height") or 0),
        )


@dataclass
class Usage:
    """Token counts of one or more model calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class Message:
    """One entry of the conversation as the model sees it."""

    role: Role
    content: str = ""
    reasoning: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None  # tool name, on role="tool"
    # Images with the text (user messages; tool results, which providers send as a user
    # message right after the tool results: see vibe/providers/wire.py).
    images: list[Image] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.reasoning:
            out["reasoning"] = self.reasoning
        if self.tool_calls:
            out["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        if self.images:
            out["images"] = [i.to_dict() for i in self.images]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(
            role=data["role"],
            content=data.get("content") or "",
            reasoning=data.get("reasoning"),
            tool_calls=[ToolCall(**c) for c in data.get("tool_calls") or []],
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            images=[Image.from_dict(i) for i in data.get("images") or [] if isinstance(i, dict)],
        )
