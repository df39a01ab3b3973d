"""`vibe mcp list|add|remove`: show the configured MCP servers (connecting to each), and edit
`[[mcp_servers]]` in $VIBE_HOME/config.toml keeping the user's comments and layout (tomlkit)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vibe.config.tomledit import read_toml_doc, write_toml_doc
from vibe.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vibe mcp", description="Manage MCP servers.")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="servers with transport, status and tool count")
    ls.add_argument("--workdir", metavar="DIR", help="project folder (default: cwd)")
    ls.add_argument("--trust", action="store_true", help="include this folder's .vibe/config.toml")
    ls.add_argument("--tools", action="store_true", help="also list each server's tools")
    add = sub.add_parser(
        "add",
        help="add a server: NAME -- COMMAND ARGS… (stdio) or NAME --url URL (HTTP)",
        usage="vibe mcp add NAME [--env K=V] -- COMMAND [ARGS…]\n"
        "       vibe mcp add NAME --url URL [--header K=V] [--api-key-env VAR] [--transport T]",
    )
    add.add_argument("name")
    add.add_argument("--url", help="an HTTP server's endpoint")
    add.add_argument(
        "--transport", choices=("http", "streamable-http", "sse"), help="HTTP transport"
    )
    add.add_argument("--header", action="append", default=[], metavar="K=V")
    add.add_argument("--api-key-env", metavar="VAR", help="variable whose value is sent as key")
    add.add_argument("--env", action="append", default=[], metavar="K=V", help="stdio: env var")
    add.add_argument("--prompt", help="hint appended to the server's tool descriptions")
    rm = sub.add_parser("remove", help="remove a server by name")
    rm.add_argument("name")
    return p


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    command: list[str] = []
    if "--" in argv:  # `vibe mcp add NAME [options] -- COMMAND ARGS…`
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1 :]
    args = build_parser().parse_args(argv)
    args.argv = command
    if args.command == "list":
        return _list(args)
    from vibe.config import vibe_home

    path = vibe_home() / "config.toml"
    if args.command == "add":
        entry = _entry(args)
        add_server(path, entry)
        print(f"added MCP server {entry['name']!r} to {path}")
    else:
        name = remove_server(path, args.name)
        print(f"removed MCP server {name!r} from {path}")
    return 0


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} {value!r}: expected KEY=VALUE")
        out[key.strip()] = text
    return out


def _entry(args: argparse.Namespace) -> dict[str, Any]:
    command = list(args.argv)
    entry: dict[str, Any] = {"name": args.name}
    if args.url and command:
        raise UsageError("give either --url URL or -- COMMAND ARGS…, not both")
    if args.url:
        entry["transport"] = args.transport or "http"
        entry["url"] = args.url
        if args.header:
            entry["headers"] = _pairs(args.header, "--header")
        if args.api_key_env:
            entry["api_key_env"] = args.api_key_env
    elif command:
        if args.header or args.api_key_env or args.transport:
            raise UsageError("--header, --api-key-env and --transport are for --url servers")
        entry["transport"] = "stdio"
        entry["command"] = command[0]
        if command[1:]:
            entry["args"] = command[1:]
        if args.env:
            entry["env"] = _pairs(args.env, "--env")
    else:
        raise UsageError("vibe mcp add NAME -- COMMAND ARGS…  or  vibe mcp add NAME --url URL")
    if args.prompt:
        entry["prompt"] = args.prompt
    return entry


def add_server(path: Path, entry: dict[str, Any]) -> None:
    """Append `entry` as a `[[mcp_servers]]` table; a bad entry or a taken name is an error."""
    import tomlkit
    from pydantic import TypeAdapter, ValidationError

    from vibe.mcp.config import McpServer, normalize_name

    try:
        server = TypeAdapter(McpServer).validate_python(entry)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("["))
        raise UsageError(f"{where or 'server'}: {err['msg']}") from None
    doc = read_toml_doc(path)
    servers = doc.get("mcp_servers")
    if servers is None:
        if doc.body:
            doc.add(tomlkit.nl())
        servers = tomlkit.aot()
        doc["mcp_servers"] = servers
    taken = [s for s in servers if normalize_name(str(s.get("name", ""))) == server.name]
    if taken:
        raise UsageError(f"an MCP server named {server.name!r} exists; remove it first")
    table = tomlkit.table()
    for key, value in entry.items():
        if key == "name":
            value = server.name
        if isinstance(value, dict):  # headers, env: one line each
            inline = tomlkit.inline_table()
            inline.update(value)
            value = inline
        table[key] = value
    servers.append(table)
    write_toml_doc(path, doc)


def remove_server(path: Path, name: str) -> str:
    from vibe.mcp.config import normalize_name

    doc = read_toml_doc(path)
    servers = doc.get("mcp_servers")
    key = normalize_name(name)
    index = next(
        (i for i, s in enumerate(servers or []) if normalize_name(str(s.get("name", ""))) == key),
        None,
    )
    if servers is None or index is None:
        raise UsageError(f"no MCP server named {name!r} in {path}")
    removed = str(servers[index].get("name"))
    del servers[index]
    if not len(servers):
        del doc["mcp_servers"]
    write_toml_doc(path, doc)
    return removed


def _list(args: argparse.Namespace) -> int:
    from vibe.build import workdir
    from vibe.config import load_config

    cwd = workdir(args.workdir)
    loaded = load_config(cwd, trust=args.trust)
    servers = loaded.config.mcp_servers
    if not servers:
        print(f"No MCP servers configured (add one with `vibe mcp add`; {loaded.config_file}).")
        return 0
    states = asyncio.run(_probe(loaded, cwd))
    print(format_states(states, tools=args.tools))
    return 0


async def _probe(loaded: Any, cwd: Path) -> list[Any]:
    from tools._proc import shell_env
    from vibe.config.secrets import lookup_key
    from vibe.mcp.manager import McpManager

    hidden = {p.api_key_env_var for p in loaded.config.providers if p.api_key_env_var}
    manager = McpManager(
        loaded.config.mcp_servers,
        cwd=cwd,
        env=shell_env(hidden | {"MISTRAL_API_KEY"}),
        log_dir=loaded.home / "logs",
        key_lookup=lambda name: lookup_key(name, loaded.env_file),
    )
    manager.set_notice_listener(lambda text: None)
    try:
        await manager.wait_started()
        return [snapshot(s) for s in manager.servers.values()]
    finally:
        await manager.aclose()


def snapshot(state: Any) -> Any:
    """What `vibe mcp list` and the TUI's /mcp show of one server."""
    from types import SimpleNamespace

    return SimpleNamespace(
        name=state.name,
        transport=state.config.transport,
        status=state.status,
        error=state.error,
        tools=[t.name for t in state.tools],
        target=state.config.label,
    )


def format_states(states: Sequence[Any], *, tools: bool = False) -> str:
    """One line per server (name, transport, status, tool count), its error and tools below."""
    rows = [("NAME", "TRANSPORT", "STATUS", "TOOLS", "TARGET")]
    for s in states:
        count = str(len(s.tools)) if s.status in ("ready", "stopped") else "-"
        rows.append((s.name, s.transport, s.status, count, s.target))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines: list[str] = []
    for i, row in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(row[:4], widths, strict=True)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
        if i == 0:
            continue
        state = states[i - 1]
        if state.error:
            lines.append(f"    error: {state.error}")
        if tools and state.tools:
            lines.append("    tools: " + ", ".join(state.tools))
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
