"""Slash commands: one async handler per command, each acting through the TUI's controller
(vibe.tui.controller), never through the App itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vibe.errors import VibeError
from vibe.events import Event
from vibe.tui.modes import label
from vibe.tui.screens.picker import PickerScreen
from vibe.tui.widgets.footer import format_tokens

if TYPE_CHECKING:
    from vibe.tui.controller import Controller

Handler = Callable[["Controller", str], Awaitable[None]]

KEYS_HELP = (
    "Keys: Enter send · Ctrl+J / Shift+Enter newline · ↑/↓ history · Tab complete · "
    "Shift+Tab next mode · Esc interrupt · Esc Esc rewind · Ctrl+G edit in $EDITOR · "
    "Ctrl+C copy selection / clear / interrupt / quit · Ctrl+D twice quit\n"
    "Input: @path adds a file's content · !cmd runs a shell command · "
    "messages sent while the agent works are queued"
)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Handler
    while_busy: bool = True  # False: refused while a turn runs (it would replace the agent)


async def _say(ctl: Controller, text: str, kind: str = "info") -> None:
    await ctl.say(text, kind)


async def cmd_help(ctl: Controller, _arg: str) -> None:
    lines = [f"{name:<10} {text}" for name, text in completions(ctl)]  # skills too
    await _say(ctl, "\n".join([*lines, "", KEYS_HELP]))


async def cmd_model(ctl: Controller, arg: str) -> None:
    rt = ctl.runtime
    assert rt is not None
    if arg:
        await ctl.switch_model(arg)
        return
    items = [(m.key, f"{m.key}  ({m.name} via {m.provider})") for m in ctl.loaded.config.models]
    ctl.app.push_screen(
        PickerScreen("Model", items, rt.model.key),
        lambda alias: ctl.app.call_later(ctl.switch_model, alias) if alias else None,
    )


async def cmd_mode(ctl: Controller, arg: str) -> None:
    rt = ctl.runtime
    assert rt is not None
    if arg:
        from vibe.tui.modes import find_mode

        mode = find_mode(rt.modes, arg)
        if mode is None:
            await _say(ctl, f"unknown mode {arg!r}; /mode lists them", "error")
        else:
            await ctl.switch_mode(mode.name)
        return
    items = [(m.name, f"{label(m)}  {m.description}") for m in rt.modes]
    ctl.app.push_screen(
        PickerScreen("Mode", items, rt.mode.name),
        lambda name: ctl.app.call_later(ctl.switch_mode, name) if name else None,
    )


async def cmd_compact(ctl: Controller, arg: str) -> None:
    rt = ctl.runtime
    assert rt is not None
    compact = getattr(rt.agent, "compact", None)
    if compact is None:
        await _say(ctl, "Compaction is not available in this build.", "error")
        return
    await _say(ctl, "Compacting the conversation…")
    try:
        event: Event = await compact(arg or None)
    except VibeError as exc:
        await _say(ctl, f"cannot compact: {exc}", "error")
        return
    await ctl.router.route(event)
    ctl.update_footer()


async def cmd_clear(ctl: Controller, _arg: str) -> None:
    await ctl.replace_runtime(None)
    await _say(ctl, "Started a new session.")


async def cmd_status(ctl: Controller, _arg: str) -> None:
    rt = ctl.runtime
    assert rt is not None
    a = rt.agent
    pct = f" ({100 * a.context_tokens / a.threshold:.0f}%)" if a.threshold else ""
    title = f"  “{rt.session.title}”" if rt.session.title else ""
    await _say(
        ctl,
        f"session   {rt.session.id}{title}\n"
        f"mode      {label(rt.mode)}\n"
        f"model     {rt.model.key} ({rt.model.name})\n"
        f"context   {format_tokens(a.context_tokens)}/{format_tokens(a.threshold)} tokens{pct}\n"
        f"tokens    {a.usage.prompt_tokens:,} in · {a.usage.completion_tokens:,} out\n"
        f"cost      ${a.cost_usd:.4f}\n"
        f"turns     {a.num_turns}",
    )


async def cmd_resume(ctl: Controller, arg: str) -> None:
    from vibe.tui.sessions import picker

    screen = picker(ctl, exclude=ctl.runtime.session.path)
    if screen is None:
        await _say(ctl, "No other saved sessions for this folder.")
        return
    ctl.app.push_screen(screen, lambda p: ctl.app.call_later(ctl.resume, Path(p)) if p else None)


async def cmd_rename(ctl: Controller, arg: str) -> None:
    session = ctl.runtime.session
    if not arg:
        shown = f"“{session.title}”" if session.title else "none yet"
        await _say(ctl, f"Title: {shown}. /rename NEW TITLE renames this session.")
        return
    session.set_title(arg)
    await _say(ctl, f"Renamed this session to “{session.title}”.")


async def cmd_rewind(ctl: Controller, _arg: str) -> None:
    ctl.open_rewind()


async def cmd_theme(ctl: Controller, arg: str) -> None:
    from vibe.tui.theme import apply_theme, save_theme

    app = ctl.app
    names = sorted(app.available_themes)
    if not arg:
        screen = PickerScreen("Theme", [(n, n) for n in names], app.theme, filter=True)
        app.push_screen(screen, lambda n: app.call_later(cmd_theme, ctl, n) if n else None)
        return
    if not apply_theme(app, arg):
        await _say(ctl, f"unknown theme {arg!r}; /theme lists them", "error")
        return
    try:
        save_theme(ctl.loaded.config_file, arg)
    except VibeError as exc:
        await _say(ctl, f"Theme {arg} for now; {exc}", "error")
        return
    await _say(ctl, f"Theme {arg}, saved in {ctl.loaded.config_file}.")


async def cmd_config(ctl: Controller, _arg: str) -> None:
    loaded = ctl.loaded
    files = "\n".join(f"  {f}" for f in loaded.files) or "  (none: built-in defaults)"
    models = ", ".join(m.key for m in loaded.config.models)
    providers = ", ".join(p.name for p in loaded.config.providers)
    trust = "trusted" if loaded.trusted else "not trusted"
    project = f"{loaded.project_dir} ({trust})" if loaded.project_dir else "none"
    await _say(
        ctl,
        f"config files:\n{files}\nhome      {loaded.home}\nproject   {project}\n"
        f"models    {models}\nproviders {providers}\n"
        f"edit {loaded.config_file} and restart to change settings",
    )


async def cmd_copy(ctl: Controller, _arg: str) -> None:
    text = ctl.router.last_answer
    if not text:
        await _say(ctl, "Nothing to copy yet.")
        return
    await ctl.copy_text(text, "the last answer")


async def cmd_mcp(ctl: Controller, _arg: str) -> None:
    from vibe.mcp.cli import format_states, snapshot

    binding = ctl.runtime.mcp if ctl.runtime is not None else None
    if binding is None:
        await _say(ctl, "No MCP servers configured ([[mcp_servers]] in config.toml).")
        return
    views = [snapshot(s) for s in binding.manager.servers.values()]
    await _say(ctl, "MCP servers\n" + format_states(views, tools=True))


async def cmd_exit(ctl: Controller, _arg: str) -> None:
    ctl.app.exit(0)


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("/help", "commands and keys", cmd_help),
        Command("/model", "pick the model (or /model ALIAS)", cmd_model),
        Command("/mode", "pick the mode (or /mode NAME)", cmd_mode),
        Command("/compact", "summarize the conversation [focus]", cmd_compact, False),
        Command("/clear", "start a new session", cmd_clear, False),
        Command("/status", "tokens, cost, turns, session id", cmd_status),
        Command("/resume", "resume a session of this folder", cmd_resume, False),
        Command("/rename", "rename this session (its title in /resume)", cmd_rename),
        Command("/rewind", "go back to an earlier message (Esc Esc)", cmd_rewind, False),
        Command("/theme", "pick the color theme (saved in config)", cmd_theme),
        Command("/config", "where the config comes from", cmd_config),
        Command("/copy", "copy the last answer", cmd_copy),
        Command("/mcp", "MCP servers: status, errors, tools", cmd_mcp),
        Command("/exit", "quit", cmd_exit),
    )
}


def completions(ctl: Controller | None = None) -> list[tuple[str, str]]:
    """The commands, then the user-invocable skills of `ctl`'s session (vibe.tui.skill_menu)."""
    from vibe.tui import skill_menu

    skills = skill_menu.completions(ctl, set(COMMANDS)) if ctl is not None else []
    return [(c.name, c.help) for c in COMMANDS.values()] + skills


def is_skill(ctl: Controller, text: str) -> bool:
    """`/name args` names a skill (sent as a prompt) rather than a command."""
    from vibe.tui import skill_menu

    return skill_menu.is_skill(ctl, text, set(COMMANDS))


async def run(ctl: Controller, text: str) -> None:
    name, _, arg = text.partition(" ")
    command = COMMANDS.get(name)
    if command is None:
        await _say(ctl, f"unknown command {name}; /help lists them", "error")
        return
    if ctl.runtime is None and name not in ("/help", "/exit", "/config"):
        await _say(ctl, "Not ready: the agent could not be started.", "error")
        return
    if ctl.busy and not command.while_busy:
        await _say(ctl, f"{name} waits for the current turn to end (Esc interrupts it).", "error")
        return
    await command.handler(ctl, arg.strip())
