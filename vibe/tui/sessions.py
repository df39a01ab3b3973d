"""The sessions of this folder in a picker (`/resume`, `--resume` without an id), newest first,
each with its title (first message, or /rename), age and model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vibe.session import Session
    from vibe.tui.controller import Controller
    from vibe.tui.screens.picker import PickerScreen


def age(updated: float, now: float | None = None) -> str:
    seconds = max(0.0, (now or time.time()) - updated)
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return ""


def session_items(ctl: Controller, exclude: Path | None) -> list[tuple[str, str]]:
    """(folder, label) of every session started in this folder, newest first."""
    from vibe.session import sessions_in

    assert ctl.loaded is not None
    out = []
    for info in sessions_in(ctl.cwd, ctl.loaded.home):
        if exclude is not None and info.path == exclude:
            continue
        title = info.title or "(no message)"
        out.append((str(info.path), f"{title}  · {age(info.updated)} · {info.model} · {info.id}"))
    return out


def picker(ctl: Controller, exclude: Path | None) -> PickerScreen | None:
    from vibe.tui.screens.picker import PickerScreen

    items = session_items(ctl, exclude)
    if not items:
        return None
    return PickerScreen(f"Resume a session of {ctl.cwd.name or ctl.cwd}", items, filter=True)


async def choose_session(ctl: Controller, exclude: Path | None) -> Path | None:
    """In a worker (startup): the chosen session folder, or None."""
    screen = picker(ctl, exclude)
    if screen is None:
        await ctl.say("No saved sessions for this folder: starting a new one.")
        return None
    chosen = await ctl.app.push_screen_wait(screen)
    return Path(chosen) if chosen else None


async def open_session(ctl: Controller, path: Path) -> Session | None:
    """The session at `path`, locked for this process; None (and a notice) when it cannot be."""
    from vibe.build import known_secrets
    from vibe.errors import VibeError
    from vibe.session import Session

    assert ctl.loaded is not None
    try:
        return Session.load(path, secrets=known_secrets(ctl.loaded), lock=True)
    except VibeError as exc:
        await ctl.say(f"cannot resume: {exc}", "error")
        return None
