"""Slash commands: one async handler per command, each using the App's public methods."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vibe.errors import VibeError
from vibe.events import Event
from vibe.session import Session, list_sessions
from vibe.tui.modes import label
from vibe.tui.screens.picker import PickerScreen
from vibe.tui.widgets.footer import format_tokens
from vibe.tui.widgets.messages import Notice

if TYPE_CHECKING:
    from vibe.tui.app import VibeApp

Handler = Callable[["VibeApp", str], Awaitable[None]]

KEYS_HELP = (
    "Keys: Enter send · Ctrl+J / Shift+Enter newline · ↑/↓ history · Tab complete · "
    "Shift+Tab next mode · Esc interrupt · Ctrl+C clear / interrupt / quit · Ctrl+D twice quit\n"
    "Input: @path adds a file's content · !cmd runs a shell command · "
    "messages sent while the agent works are queued"
)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Handler
    while_busy: bool = True  # False: refused while a turn runs (it would replace the agent)


async def _say(app: VibeApp, text: str, kind: str = "info") -> None:
    await app.chat.add(Notice(text, kind))


async def cmd_help(app: VibeApp, _arg: str) -> None:
    lines = [f"{name:<10} {text}" for name, text in completions(app)]  # skills too
    await _say(app, "\n".join([*lines, "", KEYS_HELP]))


async def cmd_model(app: VibeApp, arg: str) -> None:
    rt = app.runtime
    assert rt is not None
    if arg:
        await app.switch_model(arg)
        return
    items = [(m.key, f"{m.key}  ({m.name} via {m.provider})") for m in app.loaded.config.models]
    app.push_screen(
        PickerScreen("Model", items, rt.model.key),
        lambda alias: app.call_later(app.switch_model, alias) if alias else None,
    )


async def cmd_mode(app: VibeApp, arg: str) -> None:
    rt = app.runtime
    assert rt is not None
    if arg:
        from vibe.tui.modes import find_mode

        mode = find_mode(rt.modes, arg)
        if mode is None:
            await _say(app, f"unknown mode {arg!r}; /mode lists them", "error")
        else:
            await app.switch_mode(mode.name)
        return
    items = [(m.name, f"{label(m)}  {m.description}") for m in rt.modes]
    app.push_screen(
        PickerScreen("Mode", items, rt.mode.name),
        lambda name: app.call_later(app.switch_mode, name) if name else None,
    )


async def cmd_compact(app: VibeApp, arg: str) -> None:
    rt = app.runtime
    assert rt is not None
    compact = getattr(rt.agent, "compact", None)
    if compact is None:
        await _say(app, "Compaction is not available in this build.", "error")
        return
    await _say(app, "Compacting the conversation…")
    try:
        event: Event = await compact(arg or None)
    except VibeError as exc:
        await _say(app, f"cannot compact: {exc}", "error")
        return
    await app.router.route(event)
    app.update_footer()


async def cmd_clear(app: VibeApp, _arg: str) -> None:
    await app.replace_runtime(None)
    await _say(app, "Started a new session.")


async def cmd_status(app: VibeApp, _arg: str) -> None:
    rt = app.runtime
    assert rt is not None
    a = rt.agent
    pct = f" ({100 * a.context_tokens / a.threshold:.0f}%)" if a.threshold else ""
    await _say(
        app,
        f"session   {rt.session.id}\n"
        f"mode      {label(rt.mode)}\n"
        f"model     {rt.model.key} ({rt.model.name})\n"
        f"context   {format_tokens(a.context_tokens)}/{format_tokens(a.threshold)} tokens{pct}\n"
        f"tokens    {a.usage.prompt_tokens:,} in · {a.usage.completion_tokens:,} out\n"
        f"cost      ${a.cost_usd:.4f}\n"
        f"turns     {a.num_turns}",
    )


def _sessions_here(app: VibeApp) -> list[tuple[str, str]]:
    here = str(app.cwd.resolve())
    out: list[tuple[str, str]] = []
    for path in list_sessions(app.loaded.home)[:200]:
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("cwd") != here or not (path / "messages.jsonl").is_file():
            continue
        out.append((str(path), f"{path.name}  {meta.get('model', '')}  {_first_line(path)}"))
    return out


def _first_line(path) -> str:
    """The first user message, as the session's title."""
    try:
        with (path / "messages.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                data = json.loads(line)
                if data.get("role") == "user":
                    return (
                        str(data.get("content", "")).splitlines()[0][:60] if data["content"] else ""
                    )
    except (OSError, ValueError, IndexError):
        pass
    return ""


async def cmd_resume(app: VibeApp, arg: str) -> None:
    items = _sessions_here(app)
    if not items:
        await _say(app, "No saved sessions for this folder.")
        return

    async def chosen(path: str | None) -> None:
        if path:
            from pathlib import Path

            await app.replace_runtime(Session.load(Path(path)))

    app.push_screen(PickerScreen("Resume a session", items), lambda p: app.call_later(chosen, p))


async def cmd_config(app: VibeApp, _arg: str) -> None:
    loaded = app.loaded
    files = "\n".join(f"  {f}" for f in loaded.files) or "  (none: built-in defaults)"
    models = ", ".join(m.key for m in loaded.config.models)
    providers = ", ".join(p.name for p in loaded.config.providers)
    trust = "trusted" if loaded.trusted else "not trusted"
    project = f"{loaded.project_dir} ({trust})" if loaded.project_dir else "none"
    await _say(
        app,
        f"config files:\n{files}\nhome      {loaded.home}\nproject   {project}\n"
        f"models    {models}\nproviders {providers}\n"
        f"edit {loaded.config_file} and restart to change settings",
    )


async def cmd_copy(app: VibeApp, _arg: str) -> None:
    text = app.router.last_answer
    if not text:
        await _say(app, "Nothing to copy yet.")
        return
    app.copy_to_clipboard(text)
    app.notify(f"Copied the last answer ({len(text)} characters).")


async def cmd_mcp(app: VibeApp, _arg: str) -> None:
    from vibe.mcp.cli import format_states, snapshot

    binding = app.runtime.mcp if app.runtime is not None else None
    if binding is None:
        await _say(app, "No MCP servers configured ([[mcp_servers]] in config.toml).")
        return
    views = [snapshot(s) for s in binding.manager.servers.values()]
    await _say(app, "MCP servers\n" + format_states(views, tools=True))


async def cmd_exit(app: VibeApp, _arg: str) -> None:
    app.exit(0)


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
        Command("/config", "where the config comes from", cmd_config),
        Command("/copy", "copy the last answer", cmd_copy),
        Command("/mcp", "MCP servers: status, errors, tools", cmd_mcp),
        Command("/exit", "quit", cmd_exit),
    )
}


def completions(app: VibeApp | None = None) -> list[tuple[str, str]]:
    """The commands, then the user-invocable skills of `app`'s session (vibe.tui.skill_menu)."""
    from vibe.tui import skill_menu

    skills = skill_menu.completions(app, set(COMMANDS)) if app is not None else []
    return [(c.name, c.help) for c in COMMANDS.values()] + skills


def is_skill(app: VibeApp, text: str) -> bool:
    """`/name args` names a skill (sent as a prompt) rather than a command."""
    from vibe.tui import skill_menu

    return skill_menu.is_skill(app, text, set(COMMANDS))


async def run(app: VibeApp, text: str) -> None:
    name, _, arg = text.partition(" ")
    command = COMMANDS.get(name)
    if command is None:
        await _say(app, f"unknown command {name}; /help lists them", "error")
        return
    if app.runtime is None and name not in ("/help", "/exit", "/config"):
        await _say(app, "Not ready: the agent could not be started.", "error")
        return
    if app.busy and not command.while_busy:
        await _say(app, f"{name} waits for the current turn to end (Esc interrupts it).", "error")
        return
    await command.handler(app, arg.strip())
