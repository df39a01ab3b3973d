"""The ACP methods (acp.interfaces.Agent) on top of AcpSession: initialize, session/new,
session/load, session/list, session/prompt, session/cancel, session/set_mode and
session/set_config_option (mode, model). vibe's errors become JSON-RPC errors with their
one-line message: bad input is "invalid params" (-32602), the rest "internal error" (-32603)."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from acp import PROTOCOL_VERSION, RequestError
from acp.schema import (
    AgentCapabilities,
    Implementation,
    InitializeResponse,
    ListSessionsResponse,
    LoadSessionResponse,
    McpCapabilities,
    NewSessionResponse,
    PromptCapabilities,
    PromptResponse,
    SessionCapabilities,
    SessionInfo,
    SessionListCapabilities,
    SetSessionConfigOptionResponse,
    SetSessionModeResponse,
)

from vibe import __version__
from vibe.acp.session import AcpSession, open_session
from vibe.errors import ConfigError, UsageError, VibeError

log = logging.getLogger(__name__)


@dataclass
class Options:
    """`vibe acp` flags: the mode and model sessions start with, --trust, --add-dir."""

    mode: str | None = None
    model: str | None = None
    trust: bool = False
    add_dirs: tuple[Path, ...] = ()


@contextmanager
def _errors():
    """vibe's errors as JSON-RPC errors with the message users would see in the terminal."""
    try:
        yield
    except RequestError:
        raise
    except (UsageError, ConfigError) as exc:
        raise RequestError(-32602, str(exc), {"details": str(exc)}) from None
    except VibeError as exc:
        raise RequestError(-32603, str(exc), {"details": str(exc)}) from None


class VibeAgent:
    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.conn: Any = None
        self.fs: Any = None  # the client's fs capability
        self.sessions: dict[str, AcpSession] = {}
        self._secrets: list[str] = []

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def initialize(
        self,
        protocol_version: int,
        client_capabilities: Any = None,
        client_info: Any = None,
        **_: Any,
    ) -> InitializeResponse:
        self.fs = getattr(client_capabilities, "fs", None)
        log.info("initialize: client %s, protocol %s", client_info, protocol_version)
        return InitializeResponse(
            protocol_version=min(protocol_version, PROTOCOL_VERSION),
            agent_capabilities=AgentCapabilities(
                load_session=True,
                prompt_capabilities=PromptCapabilities(
                    image=False, audio=False, embedded_context=True
                ),
                mcp_capabilities=McpCapabilities(http=True, sse=True),
                session_capabilities=SessionCapabilities(list=SessionListCapabilities()),
            ),
            agent_info=Implementation(name="vibe", title="vibe", version=__version__),
            auth_methods=[],
        )

    async def authenticate(self, method_id: str, **_: Any) -> None:
        raise RequestError.invalid_params(
            {"message": "vibe needs no authentication (API keys come from $VIBE_HOME/.env)"}
        )

    # ---- sessions ----------------------------------------------------------------------

    def _load(self, cwd: str) -> tuple[Any, Path]:
        from vibe.build import known_secrets, setup_logging
        from vibe.config import load_config

        path = Path(cwd)
        if not path.is_absolute():
            raise UsageError(f"cwd must be an absolute path, got {cwd!r}")
        if not path.is_dir():
            raise UsageError(f"cwd {cwd}: not a directory")
        path = path.resolve()
        loaded = load_config(path, trust=self.options.trust)
        self._secrets.extend(k for k in known_secrets(loaded) if k not in self._secrets)
        setup_logging(loaded.home, self._secrets)
        return loaded, path

    def _open(self, cwd: str, mcp_servers: list[Any] | None, session: Any = None) -> AcpSession:
        from vibe.acp.mcp import with_client_servers

        loaded, path = self._load(cwd)
        loaded = with_client_servers(loaded, mcp_servers)
        s = open_session(
            self.conn,
            loaded,
            path,
            mode=self.options.mode,
            model=self.options.model,
            fs=self.fs,
            session=session,
            add_dirs=self.options.add_dirs,
        )
        self.sessions[s.id] = s
        return s

    async def new_session(
        self, cwd: str, mcp_servers: list[Any] | None = None, **_: Any
    ) -> NewSessionResponse:
        with _errors():
            s = self._open(cwd, mcp_servers)
        log.info("session/new %s in %s", s.id, cwd)
        return NewSessionResponse(
            session_id=s.id, modes=s.modes(), config_options=s.config_options()
        )

    async def load_session(
        self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None, **_: Any
    ) -> LoadSessionResponse:
        from vibe.session import Session, find_path

        with _errors():
            live = self.sessions.get(session_id)
            if live is None:
                loaded, _path = self._load(cwd)
                saved = Session.load(
                    find_path(session_id, loaded.home), secrets=self._secrets, lock=True
                )
                try:
                    live = self._open(cwd, mcp_servers, session=saved)
                except BaseException:
                    saved.close()
                    raise
        log.info("session/load %s in %s", live.id, cwd)
        await live.replay()
        return LoadSessionResponse(modes=live.modes(), config_options=live.config_options())

    async def list_sessions(
        self, cwd: str | None = None, cursor: str | None = None, **_: Any
    ) -> ListSessionsResponse:
        from vibe.config.loader import vibe_home
        from vibe.session import list_sessions

        out: list[SessionInfo] = []
        for path in list_sessions(vibe_home())[:200]:
            try:
                meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if cwd and meta.get("cwd") != str(Path(cwd).resolve()):
                continue
            title = meta.get("title") or None
            out.append(SessionInfo(session_id=path.name, cwd=meta.get("cwd", ""), title=title))
        return ListSessionsResponse(sessions=out)

    def _session(self, session_id: str) -> AcpSession:
        s = self.sessions.get(session_id)
        if s is None:
            raise RequestError.invalid_params(
                {
                    "message": f"unknown session {session_id!r}; create one with session/new or load it"
                }
            )
        return s

    # ---- turns, modes, models ----------------------------------------------------------

    async def prompt(self, prompt: list[Any], session_id: str, **_: Any) -> PromptResponse:
        s = self._session(session_id)
        text = prompt_text(prompt)
        if not text.strip():
            raise RequestError.invalid_params({"message": "the prompt is empty"})
        with _errors():
            reason = await s.prompt(text)
        return PromptResponse(stop_reason=reason)  # type: ignore[arg-type]

    async def cancel(self, session_id: str, **_: Any) -> None:
        s = self.sessions.get(session_id)
        if s is not None:
            s.cancel()

    async def set_session_mode(
        self, mode_id: str, session_id: str, **_: Any
    ) -> SetSessionModeResponse:
        s = self._session(session_id)
        with _errors():
            await s.switch_mode(mode_id)
        return SetSessionModeResponse()

    async def set_config_option(
        self, config_id: str, session_id: str, value: str | bool, **_: Any
    ) -> SetSessionConfigOptionResponse:
        s = self._session(session_id)
        with _errors():
            if config_id == "mode" and isinstance(value, str):
                await s.switch_mode(value)
            elif config_id == "model" and isinstance(value, str):
                await s.switch_model(value)
            else:
                raise RequestError.invalid_params(
                    {"message": f"unknown config option {config_id!r} = {value!r}"}
                )
        return SetSessionConfigOptionResponse(config_options=s.config_options())

    async def aclose(self) -> None:
        for s in list(self.sessions.values()):
            try:
                await s.aclose()
            except Exception:  # closing must not hide the others
                log.exception("closing session %s failed", s.id)
        self.sessions.clear()


def prompt_text(blocks: list[Any]) -> str:
    """The prompt's content blocks as one message: text as is, an embedded file (the editor's
    @-mention) as a tagged block, a link as its path."""
    parts: list[str] = []
    for block in blocks:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            res = block.resource
            where = _path(res.uri)
            text = getattr(res, "text", None)
            if text is not None:
                parts.append(f'\n<file path="{where}">\n{text}\n</file>')
            else:
                parts.append(where)
        elif kind == "resource_link":
            parts.append(_path(block.uri))
    return "\n".join(p for p in parts if p)


def _path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri
