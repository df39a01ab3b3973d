"""One ACP session: a vibe session (vibe.runtime's Runtime: the same assembly as the TUI, with
mode and model switching) plus the editor connection it reports to. A prompt runs one turn
through the agent's event stream and ends with an ACP stop reason."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from acp import RequestError, update_agent_thought_text
from acp.helpers import update_current_mode
from acp.schema import (
    ConfigOptionUpdate,
    SessionConfigOptionSelect,
    SessionConfigSelectOption,
    SessionMode,
    SessionModeState,
)

from vibe.acp.files import ClientFiles, _is_text_file
from vibe.acp.permissions import AcpApprover, AcpInteraction
from vibe.acp.updates import UpdateStream, replay
from vibe.config import LoadedConfig
from vibe.events import TurnFinished
from vibe.session import Session

log = logging.getLogger(__name__)
_MAX_OLD_TEXT = 2_000_000  # bytes of a file read to show a write_file's diff


class AcpSession:
    def __init__(self, conn: Any, runtime: Any, files: ClientFiles | None) -> None:
        self.conn, self.runtime, self.files = conn, runtime, files
        self.id: str = runtime.session.id
        self.updates = UpdateStream(runtime.cwd, self._read_old)
        self.turn: asyncio.Task[TurnFinished] | None = None

    # ---- reporting ---------------------------------------------------------------------

    async def send(self, update: Any) -> None:
        await self.conn.session_update(session_id=self.id, update=update)

    def warn(self, text: str) -> None:
        """A warning for the user (an MCP server failed, …): a thought in the editor's thread."""
        log.warning("%s", text)
        try:
            asyncio.get_running_loop().create_task(
                self.send(update_agent_thought_text(f"warning: {text}"))
            )
        except RuntimeError:  # no loop: only the log
            pass

    async def _read_old(self, path: Path) -> str | None:
        if self.files is not None:
            text = await self.files.read_text(path)
            if text is not None:
                return text
        try:
            if not _is_text_file(path) or path.stat().st_size > _MAX_OLD_TEXT:
                return None
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    async def replay(self) -> None:
        """The saved conversation as updates (session/load), before the response."""
        for update in await replay(
            list(self.runtime.session.messages), UpdateStream(self.runtime.cwd)
        ):
            await self.send(update)

    # ---- modes and models --------------------------------------------------------------

    def modes(self) -> SessionModeState:
        available = [
            SessionMode(id=m.name, name=m.display_name or m.name, description=m.description or None)
            for m in self.runtime.modes
        ]
        return SessionModeState(current_mode_id=self.runtime.mode.name, available_modes=available)

    def config_options(self) -> list[SessionConfigOptionSelect]:
        rt = self.runtime
        mode_opts = [
            SessionConfigSelectOption(
                value=m.name, name=m.display_name or m.name, description=m.description or None
            )
            for m in rt.modes
        ]
        model_opts = [
            SessionConfigSelectOption(
                value=m.key, name=m.key, description=m.name if m.name != m.key else None
            )
            for m in rt.loaded.config.models
        ]
        return [
            SessionConfigOptionSelect(
                id="mode",
                name="Mode",
                category="mode",
                type="select",
                current_value=rt.mode.name,
                options=mode_opts,
            ),
            SessionConfigOptionSelect(
                id="model",
                name="Model",
                category="model",
                type="select",
                current_value=rt.model.key,
                options=model_opts,
            ),
        ]

    async def switch_mode(self, name: str, *, notify: bool = False) -> None:
        mode = self.runtime.loaded.mode(name)
        if mode is None:
            known = ", ".join(m.name for m in self.runtime.modes)
            raise RequestError.invalid_params({"message": f"unknown mode {name!r}; known: {known}"})
        await self.runtime.set_mode(mode)
        await self.runtime.close_retired()
        if notify:  # the agent switched (plan review): the client did not ask for it
            await self.send(update_current_mode(mode.name))
        await self.send(
            ConfigOptionUpdate(
                session_update="config_option_update", config_options=self.config_options()
            )
        )

    async def switch_model(self, alias: str) -> None:
        if self.runtime.loaded.config.model(alias) is None:
            known = ", ".join(m.key for m in self.runtime.loaded.config.models)
            raise RequestError.invalid_params(
                {"message": f"unknown model {alias!r}; known: {known}"}
            )
        await self.runtime.set_model(alias)
        await self.runtime.close_retired()

    # ---- turns -------------------------------------------------------------------------

    async def prompt(self, text: str) -> str:
        """Run one turn, streaming its updates; the ACP stop reason."""
        if self.turn is not None and not self.turn.done():
            raise RequestError.invalid_request(
                {"message": "a prompt is already running in this session; cancel it first"}
            )
        self.turn = asyncio.current_task()  # type: ignore[assignment]
        from vibe.agent.turn import run_turn

        self.runtime.begin_turn(text)  # title, rewind checkpoint: as in the TUI

        fin: TurnFinished | None = None
        try:
            async for event in run_turn(self.runtime, text):
                if isinstance(event, TurnFinished):
                    fin = event
                    continue
                for update in await self.updates.convert(event):
                    await self.send(update)
        finally:
            self.turn = None
            await self.runtime.close_retired()
        assert fin is not None  # Agent.run always ends with one TurnFinished
        return stop_reason(fin)

    def cancel(self) -> None:
        self.runtime.agent.interrupt()

    async def aclose(self) -> None:
        self.cancel()
        try:
            await self.runtime.aclose()
        finally:
            self.runtime.session.close()


def stop_reason(fin: TurnFinished) -> str:
    """end_turn | max_tokens | max_turn_requests | cancelled | refusal; an error raises."""
    if fin.status == "interrupted":
        return "cancelled"
    if fin.status == "limit":
        return "max_tokens" if "token" in (fin.error or "") else "max_turn_requests"
    if fin.status == "error":
        raise RequestError(-32603, fin.error or "the turn failed", {"details": fin.error})
    if any("content_filter" in w or "refus" in w for w in fin.warnings):
        return "refusal"
    return "end_turn"


def open_session(
    conn: Any,
    loaded: LoadedConfig,
    cwd: Path,
    *,
    mode: str | None,
    model: str | None,
    fs: Any,
    session: Session | None = None,
    add_dirs: tuple[Path, ...] = (),
) -> AcpSession:
    """Build the runtime (ConfigError/UsageError for bad input) and bind the editor to it."""
    from vibe.runtime import build_runtime

    approver, interaction = AcpApprover(), AcpInteraction()
    holder: list[AcpSession] = []

    def warn(text: str) -> None:
        if holder:
            holder[0].warn(text)
        else:
            log.warning("%s", text)

    runtime = build_runtime(
        loaded,
        cwd,
        approver,
        model_alias=model,
        mode_name=mode,
        session=session,
        add_dirs=add_dirs,
        warn=warn,
        interaction=interaction,
    )
    sid = runtime.session.id
    read, write = bool(fs and fs.read_text_file), bool(fs and fs.write_text_file)
    files = ClientFiles(conn, sid, read=read, write=write) if (read or write) else None
    runtime.agent.settings.files = files
    acp_session = AcpSession(conn, runtime, files)
    holder.append(acp_session)
    approver.session = interaction.session = acp_session
    for warning in runtime.session.warnings:
        log.warning("%s", warning)
    return acp_session
