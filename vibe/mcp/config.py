"""`[[mcp_servers]]` entries (Mistral Vibe's format), discriminated by `transport`."""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

__all__ = [
    "McpHttp",
    "McpServer",
    "McpStdio",
    "check_mcp_names",
    "normalize_name",
]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def normalize_name(name: str) -> str:
    """A server name as it appears in tool names: `[A-Za-z0-9_-]` only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name.strip())


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Server name; tools appear as {name}_{tool}.")
    prompt: str = Field(default="", description="Hint appended to the server's tool descriptions.")
    startup_timeout_sec: float = Field(default=10.0, gt=0, le=3600, allow_inf_nan=False)
    tool_timeout_sec: float = Field(default=60.0, gt=0, le=86_400, allow_inf_nan=False)
    disabled: bool = False
    disabled_tools: tuple[str, ...] = Field(
        default=(), description="Tool names (or globs) of this server the model never sees."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not normalize_name(value).strip("_-"):
            raise ValueError("a server name needs at least one letter or digit")
        return normalize_name(value)

    @property
    def label(self) -> str:
        url = getattr(self, "url", "")
        return url or " ".join([*getattr(self, "command", ()), *getattr(self, "args", ())])


class McpStdio(_Common):
    """A server started as a child process speaking MCP on stdin/stdout."""

    transport: Literal["stdio"] = "stdio"
    command: tuple[str, ...] = Field(description="Program (a string is shlex-split) or a list.")
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(
        default_factory=dict, description="Variables set for the server (passed through as is)."
    )
    cwd: str | None = None

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"cannot split the command: {exc}") from None
        if isinstance(value, list | tuple) and not value:
            raise ValueError("the command is empty")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"not an environment variable name: {key!r}")
        return value

    @property
    def argv(self) -> list[str]:
        return [*self.command, *self.args]


class McpHttp(_Common):
    """A remote server: streamable HTTP (`http`, `streamable-http`) or legacy HTTP+SSE (`sse`).
    `http` falls back to HTTP+SSE when the server does not speak streamable HTTP."""

    transport: Literal["http", "streamable-http", "sse"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    api_key_env: str = Field(default="", description="Variable holding a key sent in a header.")
    api_key_header: str = "Authorization"
    api_key_format: str = "Bearer {token}"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if value and not _ENV_NAME.fullmatch(value):
            raise ValueError("not an environment variable name")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", key):
                raise ValueError(f"not a valid HTTP header name: {key!r}")
            if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", text):
                raise ValueError("a header value must not contain control characters")
        return value

    @model_validator(mode="after")
    def _format(self) -> McpHttp:
        if self.api_key_env and "{token}" not in self.api_key_format:
            raise ValueError("api_key_format must contain {token}")
        return self


def _transport(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("transport", "stdio"))
    return str(getattr(value, "transport", "stdio"))


# The union tags, which config error paths leave out (vibe.config.loader).
STDIO_TAG, HTTP_TAG = "[stdio]", "[http]"
# A callable discriminator keeps error paths short: mcp_servers[2].url, not
# mcp_servers[2].McpHttp.url; a bad `transport` is reported by McpHttp's Literal.
McpServer = Annotated[
    Annotated[McpStdio, Tag(STDIO_TAG)] | Annotated[McpHttp, Tag(HTTP_TAG)],
    Discriminator(lambda v: STDIO_TAG if _transport(v) == "stdio" else HTTP_TAG),
]


def check_mcp_names(servers: list[Any]) -> str | None:
    """The first duplicate server name (after normalisation) as an error text, else None."""
    seen: dict[str, int] = {}
    for i, server in enumerate(servers):
        raw = server.get("name") if isinstance(server, dict) else getattr(server, "name", None)
        if not isinstance(raw, str):
            continue
        key = normalize_name(raw)
        if key in seen:
            return f"mcp_servers[{i}].name\0duplicate MCP server name {raw!r} (also mcp_servers[{seen[key]}])"
        seen[key] = i
    return None
