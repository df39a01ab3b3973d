"""MCP tools as vibe tools: `{server}_{tool}` (64 characters at most), the server's JSON schema
passed through, results turned into text for the model."""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from tools.base import Tool, ToolContext, ToolResult
from tools.errors import ToolError
from vibe.mcp.manager import McpCallError, McpManager, ServerState

MAX_NAME = 64


class McpArgs(BaseModel):
    """Any JSON object: the server validates its own arguments against its schema."""

    model_config = ConfigDict(extra="allow")


def tool_name(server: str, tool: str) -> str:
    """`{server}_{tool}` in `[A-Za-z0-9_-]`; past 64 characters, cut with a stable hash suffix."""
    name = f"{server}_{re.sub(r'[^A-Za-z0-9_-]', '_', tool)}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(f"{server}\0{tool}".encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


class McpTool(Tool):
    """One tool of one MCP server, called over the manager's long-lived connection."""

    Args = McpArgs
    access = "any"  # unknown effects: the loop runs it after earlier calls, before later ones

    def __init__(self, manager: McpManager, state: ServerState, spec: Any, name: str) -> None:
        self.manager = manager
        self.server = state.name
        self.remote_name: str = spec.name
        self.name = name  # type: ignore[misc]
        hint = state.config.prompt.strip()
        text = (spec.description or spec.title or f"{spec.name} (MCP server {state.name})").strip()
        self.description = f"{text}\n\n{hint}" if hint else text  # type: ignore[misc]
        schema = dict(spec.input_schema or {})
        schema.pop("$schema", None)
        self.input_schema = schema

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        arguments = args.model_dump()
        try:
            result = await self.manager.call(self.server, self.remote_name, arguments)
        except McpCallError as exc:
            raise ToolError(str(exc)) from None
        text = result_text(result)
        # Shown to image models (vibe.images); decoding and scaling happen off the event loop.
        images = await asyncio.to_thread(result_images, result, self.name)
        return ToolResult(text, ok=not result.is_error, data={"images": images} if images else None)


def result_images(result: Any, tool: str) -> list[dict[str, Any]]:
    """The image blocks of a result, scaled down for the wire (tools/_image.py); an image
    that cannot be read keeps only its note in the text."""
    import base64
    import binascii

    from tools._image import ImageFileError, load_image_bytes

    out: list[dict[str, Any]] = []
    for n, block in enumerate(result.content or []):
        if getattr(block, "type", "") != "image" or not block.data:
            continue
        try:
            raw = base64.b64decode(block.data, validate=False)
            out.append(load_image_bytes(raw, f"{tool} image {n + 1}").to_dict())
        except (ImageFileError, binascii.Error, ValueError):
            continue
    return out


def result_text(result: Any) -> str:
    """Text content as is, embedded text resources as text, images and audio as a note, and
    structuredContent as JSON when there is no text."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            size = len(block.data or "") * 3 // 4
            shown = "" if kind == "image" else " not shown"  # images: see result_images
            parts.append(f"[{kind} content ({block.mime_type}, {size} bytes){shown}]")
        elif kind == "resource":
            res = block.resource
            text = getattr(res, "text", None)
            if text is not None:
                parts.append(f"[resource {res.uri}]\n{text}")
            else:
                parts.append(f"[binary resource {res.uri} ({res.mime_type or 'unknown type'})]")
        elif kind == "resource_link":
            parts.append(f"[resource link {block.uri}{f': {block.name}' if block.name else ''}]")
        else:
            parts.append(f"[{kind or 'unknown'} content not shown]")
    structured = getattr(result, "structured_content", None)
    if not any(p.strip() for p in parts) and structured is not None:
        parts = [json.dumps(structured, ensure_ascii=False, indent=1)]
    text = "\n".join(parts)
    if not text.strip():
        return "(the tool returned an error with no text)" if result.is_error else "(no output)"
    return text


def server_tools(manager: McpManager) -> dict[str, Tool]:
    """The tools of every ready server, minus each server's `disabled_tools` (names or globs,
    with or without the server prefix)."""
    out: dict[str, Tool] = {}
    for state in manager.servers.values():
        if state.status != "ready":
            continue
        skip = state.config.disabled_tools
        for spec in state.tools:
            name = tool_name(state.name, spec.name)
            if any(fnmatch.fnmatchcase(spec.name, p) or fnmatch.fnmatchcase(name, p) for p in skip):
                continue
            if name in out:  # two tools normalised to one name: keep both, apart
                digest = hashlib.sha1(f"{state.name}\0{spec.name}".encode()).hexdigest()[:8]
                name = f"{name[: MAX_NAME - 9]}_{digest}"
            out[name] = McpTool(manager, state, spec, name)
    return out
