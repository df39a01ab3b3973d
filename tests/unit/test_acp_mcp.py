"""The MCP servers an ACP client passes (stdio, http, sse) become `[[mcp_servers]]` entries."""

from __future__ import annotations

import pytest

pytest.importorskip("acp")

from acp.schema import EnvVariable, HttpHeader, HttpMcpServer, McpServerStdio

from vibe.acp.mcp import convert, with_client_servers
from vibe.config import load_config
from vibe.errors import UsageError
from vibe.mcp.config import McpHttp, McpStdio


def test_stdio_and_http_servers_convert():
    stdio = convert(
        McpServerStdio(
            name="fs tools",
            command="npx",
            args=["-y", "srv"],
            env=[EnvVariable(name="A", value="1")],
        )
    )
    assert isinstance(stdio, McpStdio)
    assert (stdio.name, stdio.argv, stdio.env) == ("fs_tools", ["npx", "-y", "srv"], {"A": "1"})
    http = convert(
        HttpMcpServer(
            type="http",
            name="docs",
            url="https://example.com/mcp",
            headers=[HttpHeader(name="X-Key", value="k")],
        )
    )
    assert isinstance(http, McpHttp) and http.transport == "http"
    assert http.headers == {"X-Key": "k"}
    with pytest.raises(UsageError, match=r"'bad'.*http"):
        convert(HttpMcpServer(type="http", name="bad", url="ftp://x", headers=[]))


def test_client_servers_join_the_configs(tmp_path):
    loaded = load_config(tmp_path, home=tmp_path / "home")
    server = McpServerStdio(name="one", command="srv", args=[], env=[])
    merged = with_client_servers(loaded, [server])
    assert [s.name for s in merged.config.mcp_servers] == ["one"]
    assert loaded.config.mcp_servers == () and with_client_servers(loaded, []) is loaded
