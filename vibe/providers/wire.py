"""The one serialiser of our messages into OpenAI chat-completions messages: the remote
providers (openai_compat.py, mistral.py) and the local engine (local.py) all use it.

Images: a user message with images becomes a list of content parts, its text first, then one
`image_url` part per image: Mistral's API takes the data URL as a string
(`{"type": "image_url", "image_url": "data:image/png;base64,…"}`), OpenAI-compatible servers
as an object (`{"type": "image_url", "image_url": {"url": "data:…"}}`). A tool message's
content stays text everywhere (OpenAI-compatible servers take only text in tool results), so
the images of tool results (read_file of a png, an MCP tool's image) follow the run of tool
messages as one user message: "Images returned by the tool calls above", then the parts.
Where images cannot be sent (`ImageStyle` "none": a model without `supports_images`, the local
engine) each image becomes a one-line text note instead."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from vibe.messages import Image, Message

ImageStyle = Literal["openai", "mistral", "none"]
TOOL_IMAGES_INTRO = "Images returned by the tool calls above:"


def image_part(image: Image, style: ImageStyle) -> dict[str, Any]:
    """One `image_url` content part in the dialect's form."""
    if style == "mistral":
        return {"type": "image_url", "image_url": image.data_url}
    return {"type": "image_url", "image_url": {"url": image.data_url}}


def image_note(image: Image) -> str:
    name = image.name or "image"
    return f"[{name}: an image this model cannot see (supports_images is off for it)]"


def _content(text: str, images: list[Image], style: ImageStyle) -> str | list[dict[str, Any]]:
    if not images:
        return text
    if style == "none":
        notes = "\n".join(image_note(i) for i in images)
        return f"{text}\n{notes}" if text else notes
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    return parts + [image_part(i, style) for i in images]


def to_wire(
    message: Message, *, reasoning: bool = False, images: ImageStyle = "openai"
) -> dict[str, Any]:
    """One message; `reasoning`: send an assistant's reasoning back as a thinking block (the
    Mistral API and reasoning-style servers take it back)."""
    if message.role == "tool":
        out: dict[str, Any] = {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content,
        }
        if message.name:
            out["name"] = message.name
        return out
    if message.role != "assistant":
        return {"role": message.role, "content": _content(message.content, message.images, images)}
    out = {"role": "assistant", "content": message.content}
    if message.reasoning and reasoning:
        blocks: list[dict[str, Any]] = [
            {"type": "thinking", "thinking": [{"type": "text", "text": message.reasoning}]}
        ]
        if message.content:
            blocks.append({"type": "text", "text": message.content})
        out["content"] = blocks
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    return out


def to_wire_list(
    messages: Iterable[Message], *, reasoning: bool = False, images: ImageStyle = "openai"
) -> list[dict[str, Any]]:
    """All messages; tool-result images follow their run of tool messages as a user message."""
    out: list[dict[str, Any]] = []
    pending: list[tuple[Message, Image]] = []
    for message in messages:
        if message.role != "tool" and pending:
            out.append(_tool_images(pending, images))
            pending = []
        out.append(to_wire(message, reasoning=reasoning, images=images))
        if message.role == "tool":
            pending += [(message, image) for image in message.images]
    if pending:
        out.append(_tool_images(pending, images))
    return out


def _tool_images(pending: list[tuple[Message, Image]], style: ImageStyle) -> dict[str, Any]:
    names = ", ".join(f"{m.name or 'tool'}: {i.name or 'image'}" for m, i in pending)
    return {
        "role": "user",
        "content": _content(f"{TOOL_IMAGES_INTRO} {names}", [i for _, i in pending], style),
    }
