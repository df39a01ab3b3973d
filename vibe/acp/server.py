"""`vibe acp`: parse the flags, keep stdout for protocol messages only, log to
$VIBE_HOME/logs/vibe.log, and serve ACP over stdin/stdout until the editor closes stdin.

stdout is the protocol channel: the real fd 1 is duplicated for the connection, and fd 1 itself
(and sys.stdout) then points at stderr, so a stray print, or a child process that inherits
stdout, can never corrupt the JSON-RPC stream."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vibe acp",
        description="Serve the Agent Client Protocol on stdin/stdout, for editors (Zed, "
        "JetBrains). Editors start it; you do not run it by hand.",
    )
    p.add_argument("--agent", metavar="NAME", help="mode (agent profile) sessions start in")
    p.add_argument("--model", metavar="ALIAS", help="model alias sessions start with")
    p.add_argument(
        "--trust",
        action="store_true",
        help="trust the editor's folders: read .vibe/config.toml, AGENTS.md",
    )
    p.add_argument(
        "--add-dir",
        action="append",
        metavar="DIR",
        help="another folder the tools may work in (repeatable)",
    )
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    from vibe.acp.agent import Options
    from vibe.build import add_dirs

    options = Options(args.agent, args.model, args.trust, add_dirs(args.add_dir))
    protocol_out = _guard_stdout()
    _log_to_file()
    try:
        asyncio.run(serve(options, protocol_out))
    except KeyboardInterrupt:
        return 130
    return 0


def _guard_stdout() -> int:
    """A private copy of fd 1 for the protocol; fd 1 and sys.stdout go to stderr from now on."""
    sys.stdout.flush()
    out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def _log_to_file() -> None:
    """vibe's log handler also takes the SDK's log records (it logs to the root logger)."""
    from vibe.build import setup_logging
    from vibe.config.loader import vibe_home

    setup_logging(vibe_home(), [])
    vibe_log = logging.getLogger("vibe")
    root = logging.getLogger()
    for handler in vibe_log.handlers:
        if getattr(handler, "_vibe", False) and handler not in root.handlers:
            root.addHandler(handler)
    vibe_log.propagate = False  # once is enough
    logging.getLogger("tools").propagate = False
    root.setLevel(logging.INFO)


async def serve(options: object, protocol_out: int) -> None:
    from acp.core import AgentSideConnection

    from vibe.acp.agent import VibeAgent

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=50 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pipe = os.fdopen(protocol_out, "wb", buffering=0)
    protocol = asyncio.streams.FlowControlMixin()
    try:
        transport, _ = await loop.connect_write_pipe(lambda: protocol, pipe)
    except ValueError:  # stdout is a regular file (a log, a test): plain blocking writes
        transport = _FileTransport(pipe)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)  # type: ignore[arg-type]
    agent = VibeAgent(options)  # type: ignore[arg-type]
    conn = AgentSideConnection(agent, writer, reader, listening=False)
    try:
        await conn.listen()
    finally:
        await agent.aclose()
        await conn.close()


class _FileTransport(asyncio.WriteTransport):
    def __init__(self, file: object) -> None:
        super().__init__()
        self._file = file
        self._closing = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        if not self._closing:
            self._file.write(data)  # type: ignore[attr-defined]

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def can_write_eof(self) -> bool:
        return False
