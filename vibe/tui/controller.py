"""The TUI's controller: startup (config → trust → onboarding → agent → first prompt), the queue of
prompts, turns, mode and model switching, replacing the runtime (/clear, /resume, /rewind).
Slash commands (commands.py) and dialogs act through it; the App (app.py) owns only the layout
and the keys, and hands both to this object."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from vibe.errors import VibeError

if TYPE_CHECKING:
    from pathlib import Path

    from vibe.config import LoadedConfig
    from vibe.runtime import Runtime
    from vibe.session import Session
    from vibe.tui.app import AppOptions, VibeApp
    from vibe.tui.approver import TuiApprover
    from vibe.tui.notify import Notifier
    from vibe.tui.router import EventRouter
    from vibe.tui.widgets.messages import UserMessage

LONG_TURN_S = 20.0  # a turn that ran this long notifies when it ends (terminal not focused)


class Controller:
    def __init__(self, app: VibeApp, loaded: LoadedConfig | None, options: AppOptions) -> None:
        self.app, self.loaded, self.options = app, loaded, options
        self.cwd: Path = options.cwd
        self.runtime: Runtime | None = None
        self.approver: TuiApprover | None = None
        self.router: EventRouter | None = None
        self.notifier: Notifier | None = None
        self.startup_error: VibeError | None = None
        self.pending: deque[tuple[str, UserMessage]] = deque()
        self.busy = False
        self.starting = True  # prompts typed before the agent is ready wait in the queue

    async def say(self, text: str, kind: str = "info") -> None:
        from vibe.tui.widgets.messages import Notice

        await self.app.chat.add(Notice(text, kind))

    def warn(self, message: str) -> None:
        """A warning the user must see but that does not stop anything (e.g. "always" not saved)."""
        self.app.notify(message, severity="warning", timeout=10)

    # ---- startup ----------------------------------------------------------------------------

    def start(self) -> None:
        self.app.run_worker(self._startup(), group="startup", exclusive=True)

    async def _startup(self) -> None:
        from vibe.tui import startup

        if self.loaded is None and not await startup.load(self):
            return
        try:
            self._apply_settings()
            startup.show_mode(self)
            await startup.ask_trust(self)
            model_alias = await startup.onboard(self)
            if model_alias is False:
                self.app.exit(1)
                return
            if self.options.pick_session and self.options.session is None:
                self.options.session = await startup.pick_session(self)
            # The agent, tools, HTTP stack and markdown/syntax renderers import in a thread,
            # after the first frame.
            build = await asyncio.to_thread(_preload)
            from vibe.tui.approver import TuiApprover
            from vibe.tui.interaction import TuiInteraction
            from vibe.tui.router import EventRouter

            self.router = EventRouter(self.app.chat, self.app.footer_bar)
            grace = self.options.approval_grace_s
            approver = TuiApprover(self.app) if grace is None else TuiApprover(self.app, grace)
            approver.on_ask = self.attention
            self.approver = approver
            self.runtime = build.build_runtime(
                self.loaded,
                self.cwd,
                self.approver,
                model_alias=model_alias or self.options.model,
                mode_name=self.options.mode,
                session=self.options.session,
                add_dirs=self.options.add_dirs,
                warn=self.warn,
                interaction=TuiInteraction(self),
                **self._factory_kw(),
            )
        except VibeError as exc:
            self.starting = False
            await self.say(f"error: {exc}", "error")
            return
        self.starting = False
        self.update_footer()
        if self.options.session is not None:
            await self.show_history()
        for warning in self.runtime.session.warnings:
            await self.say(warning, "error")
        if self.options.prompt:
            await self.submit(self.options.prompt)
        elif self.pending:
            await self._next_turn()

    def _apply_settings(self) -> None:
        """Settings of the config that the screen uses: theme, notifications."""
        from vibe.tui.notify import Notifier
        from vibe.tui.theme import apply_theme

        assert self.loaded is not None
        self.notifier = Notifier(self.app, getattr(self.loaded.config, "notifications", "auto"))
        apply_theme(self.app, getattr(self.loaded.config, "theme", None))

    def _factory_kw(self) -> dict[str, Any]:
        factory = self.options.provider_factory
        return {"provider_factory": factory} if factory else {}

    def attention(self, why: str) -> None:
        """An approval or question waits: tell the user when the terminal is not focused."""
        if self.notifier is not None:
            self.notifier.notify(why)

    # ---- input and the queue ----------------------------------------------------------------

    async def submit(self, text: str) -> None:
        from vibe.tui import commands
        from vibe.tui.widgets.messages import UserMessage

        stripped = text.strip()
        if stripped.startswith("/") and not commands.is_skill(self, stripped):
            await commands.run(self, stripped)
        elif stripped.startswith("!"):
            self.app.run_worker(self._shell(stripped[1:].strip()), group="shell")
        elif self.runtime is None and not self.starting:
            await self.say("Not ready: the agent could not be started.", "error")
        else:
            message = UserMessage(text, queued=True)
            await self.app.query_one("#queue").mount(message)
            self.pending.append((text, message))
            self.update_activity()
            if not self.busy and self.runtime is not None:
                await self._next_turn()

    async def _shell(self, command: str) -> None:
        from vibe.tui.shell import run_shell
        from vibe.tui.widgets.messages import ShellOutput

        if not command:
            return
        card = await self.app.chat.add(ShellOutput(command))
        result = await run_shell(command, self.cwd)
        card.set_result(result.output, result.exit_code)

    async def _next_turn(self) -> None:
        from vibe.tui.mentions import attach_mentions
        from vibe.tui.widgets.messages import UserMessage

        if not self.pending or self.runtime is None:
            return
        text, message = self.pending.popleft()
        await message.remove()
        await self.app.chat.add(UserMessage(text))
        self.app.chat.anchor()
        self.busy = True
        self.update_activity()
        self.runtime.begin_turn(text)  # title, rewind checkpoint: what the user typed
        # @images attach to the prompt (or a notice says why not): vibe/tui/mentions.py
        prompt, notices = await asyncio.to_thread(
            attach_mentions, text, self.cwd, self.runtime.agent
        )
        for notice in notices:
            self.app.notify(notice, severity="warning", timeout=10)
        self.app.run_worker(self._run_turn(prompt), group="agent", exclusive=True)

    async def _run_turn(self, prompt: str) -> None:
        assert self.runtime is not None and self.router is not None
        started = time.monotonic()
        try:
            from vibe.agent.turn import run_turn

            async for event in run_turn(self.runtime, prompt):  # skills, plan-mode reminders
                await self.router.route(event)
        finally:
            self.busy = False
            self.update_activity()
        if time.monotonic() - started >= LONG_TURN_S:
            self.attention("vibe: the turn finished")
        await self.runtime.close_retired()
        await self._next_turn()

    def update_activity(self) -> None:
        from textual.widgets import Static

        activity = self.app.query_one("#activity", Static)
        parts = ["working… (esc to interrupt)"] if self.busy else []
        if len(self.pending) > (0 if self.busy else 1):
            parts.append(f"{len(self.pending)} queued")
        activity.update(" · ".join(parts))
        activity.display = bool(parts)

    def interrupt(self) -> bool:
        """Interrupt the running turn; queued messages go back to the input. True if running."""
        if not self.busy or self.runtime is None:
            return False
        self.runtime.agent.interrupt()
        if self.pending:
            texts = [text for text, _ in self.pending]
            for _, message in self.pending:
                message.remove()
            self.pending.clear()
            prompt = self.app.prompt
            prompt.set_value("\n".join([*texts, prompt.text]).strip())
        return True

    # ---- modes, models, footer --------------------------------------------------------------

    def update_footer(self) -> None:
        from vibe.tui.modes import label

        rt = self.runtime
        if rt is None:
            return
        self.app.footer_bar.set_state(
            mode=label(rt.mode),
            model=rt.model.key,
            used=rt.agent.context_tokens,
            threshold=rt.agent.threshold,
            cost=rt.agent.cost_usd,
        )

    async def cycle_mode(self) -> None:
        from vibe.tui.modes import next_mode

        if self.runtime is None:
            return
        await self.switch_mode(next_mode(self.runtime.modes, self.runtime.mode.name).name)

    async def switch_mode(self, name: str) -> None:
        from vibe.tui.modes import label

        assert self.runtime is not None and self.loaded is not None
        mode = self.loaded.mode(name)
        if mode is None:
            await self.say(f"unknown mode {name!r}", "error")
            return
        try:
            await self.runtime.set_mode(mode)
        except VibeError as exc:
            await self.say(f"cannot switch to {label(mode)}: {exc}", "error")
        await self.runtime.close_retired()
        self.update_footer()

    async def switch_model(self, alias: str) -> None:
        assert self.runtime is not None
        try:
            await self.runtime.set_model(alias)
        except VibeError as exc:
            await self.say(f"cannot switch model: {exc}", "error")
        await self.runtime.close_retired()
        self.update_footer()

    # ---- replacing the runtime: /clear, /resume, /rewind ------------------------------------

    async def replace_runtime(self, session: Session | None) -> None:
        """A new agent, same mode and model: session None starts a fresh session, another
        session resumes it, the same session (after a rewind) reloads its history."""
        from vibe.runtime import build_runtime

        old = self.runtime
        assert old is not None and self.loaded is not None and self.approver is not None
        self.runtime = build_runtime(
            self.loaded,
            self.cwd,
            self.approver,
            model_alias=old.model.key,
            mode_name=old.mode.name,
            session=session,
            provider_factory=old.provider_factory,
            add_dirs=old.add_dirs,
            warn=self.warn,
            mcp=old.mcp,  # the MCP servers keep running for the new session
            interaction=old.extras.interaction if old.extras else None,
        )
        if session is old.session:  # a rewind: what the user allowed still holds
            self.runtime.agent.session_rules = list(old.agent.session_rules)
        old.mcp = None
        await old.aclose()
        if session is not old.session:
            old.session.close()  # its lock goes: another vibe may resume it now
        await self.app.chat.clear()
        self.update_footer()
        if session is not None:
            await self.show_history()

    async def resume(self, path: Path) -> None:
        from vibe.tui.sessions import open_session

        session = await open_session(self, path)
        if session is not None:
            await self.replace_runtime(session)

    async def show_history(self) -> None:
        from vibe.tui.transcript import factories

        assert self.runtime is not None
        messages = [m for m in self.runtime.agent.messages if m.role != "system"]
        await self.app.chat.load(factories(messages))

    # ---- what commands and keys open -------------------------------------------------------

    def completions(self) -> list[tuple[str, str]]:
        """The `/` menu: commands, then the session's user-invocable skills."""
        from vibe.tui import commands

        return commands.completions(self)

    def dialog(self, flow: Any) -> None:
        """Run a coroutine that shows dialogs (push_screen_wait needs a worker)."""
        self.app.run_worker(flow, group="dialog", exclusive=True)

    def open_rewind(self) -> None:
        from vibe.tui.rewind_flow import rewind_flow

        self.dialog(rewind_flow(self))

    async def copy_text(self, text: str, what: str) -> None:
        from vibe.tui.clipboard import copy

        await self.say(copy(self.app, text, what, self.copy_file()))

    def copy_file(self) -> Path | None:
        return self.runtime.session.path / "copy.md" if self.runtime is not None else None

    async def aclose(self) -> None:
        if self.runtime is not None:
            await self.runtime.aclose()


def _preload() -> Any:
    """Import what the first frame does not need; returns vibe.runtime."""
    for name in ("rich.markdown", "rich.syntax", "textual.widgets._markdown"):
        importlib.import_module(name)
    return importlib.import_module("vibe.runtime")
