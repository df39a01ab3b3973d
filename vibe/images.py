"""Images in the conversation: which models get them, the one-line notice for those that do
not, tool results that carry images (read_file of a png, an MCP tool's image) and `@image`
attachments of a prompt. The pixels are read and scaled by tools/_image.py; the wire format
is vibe/providers/wire.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools._image import ImageFileError, ImagePayload, load_image
from tools._sniff import Kind
from vibe.config import ModelConfig
from vibe.messages import Image


def takes_images(model: ModelConfig, provider: Any) -> bool:
    """A model with `supports_images = true`, not behind the local engine."""
    return model.supports_images and getattr(provider, "takes_images", True)


def notice(model: ModelConfig, provider: Any) -> str:
    """Why images are not sent, in one line, saying what to do."""
    if not getattr(provider, "takes_images", True):
        return f"the local engine ({model.key}) does not take images; the image was not sent"
    return (
        f"the model {model.key} does not take images (supports_images = false in its "
        "[[models]] entry); the image was not sent"
    )


def to_image(payload: ImagePayload | dict[str, Any]) -> Image:
    if isinstance(payload, ImagePayload):
        payload = payload.to_dict()
    return Image.from_dict(payload)


def tool_images(
    text: str, data: dict[str, Any] | None, model: ModelConfig, provider: Any
) -> tuple[str, list[Image], dict[str, Any] | None]:
    """(text for the model, images for its message, data for the UIs) of a tool result whose
    `data["images"]` holds images: they go with the result to a model that takes images;
    any other model reads a one-line notice instead. The pixels never reach the UIs' data."""
    if not data or not data.get("images"):
        return text, [], data
    data = dict(data)
    payloads = data.pop("images")
    data["image_names"] = [p.get("name", "") for p in payloads if isinstance(p, dict)]
    if takes_images(model, provider):
        images = [to_image(p) for p in payloads if isinstance(p, dict)]
        return f"{text}\n(the image is attached below)", images, data
    return f"{text}\nNote: {notice(model, provider)}.", [], data


def mention_attachment(
    path: Path, shown: str, kind: Kind, model: ModelConfig, provider: Any
) -> tuple[Image | None, str | None]:
    """An `@file` that is not text (`kind`: tools._sniff's): (the image to attach, None), or
    (None, a one-line notice for the user) when it cannot be attached; (None, None) for a text
    file (inline it)."""
    if kind == "image":
        if not takes_images(model, provider):
            return None, f"@{shown} not attached: {notice(model, provider)}"
        try:
            return to_image(load_image(path, shown)), None
        except ImageFileError as exc:
            return None, f"@{shown} not attached: {exc}"
    if kind == "binary":
        return None, f"@{shown} not attached: it is a binary file (only text and images can be)"
    return None, None
