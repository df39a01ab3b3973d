"""Copying honestly. The terminal's clipboard is reached with OSC 52, which many terminals
support and some ignore without a word (Apple Terminal, the Linux console, tmux without
`set-clipboard on`, GNU screen). Where OSC 52 is known not to arrive, or may not, the text also
goes to the system clipboard command when there is one, and always into a file the user can
open: the message says which of these happened."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Terminals known to take OSC 52 by default (TERM_PROGRAM, or a variable they set).
_OSC52_PROGRAMS = ("iTerm.app", "WezTerm", "ghostty", "vscode", "Tabby", "rio", "WarpTerminal")
_OSC52_VARS = ("KITTY_WINDOW_ID", "WT_SESSION", "ALACRITTY_SOCKET", "ALACRITTY_WINDOW_ID")
_NO_OSC52_PROGRAMS = ("Apple_Terminal",)


def osc52_support(env: Mapping[str, str] | None = None) -> bool | None:
    """True: the terminal takes OSC 52; False: it does not; None: unknown."""
    env = os.environ if env is None else env
    if env.get("TERM_PROGRAM") in _NO_OSC52_PROGRAMS or env.get("TERM") == "linux":
        return False
    if env.get("TMUX") or env.get("STY"):  # passed on only when the multiplexer is told to
        return None
    if env.get("TERM_PROGRAM") in _OSC52_PROGRAMS or any(env.get(v) for v in _OSC52_VARS):
        return True
    if env.get("TERM", "").startswith(("xterm-kitty", "foot", "wezterm", "alacritty")):
        return True
    return None


def system_copy_command(env: Mapping[str, str] | None = None) -> list[str] | None:
    """A local clipboard command (not over SSH, where it would fill the remote machine's)."""
    env = os.environ if env is None else env
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return None
    candidates: list[list[str]] = [["pbcopy"], ["clip.exe"]]
    if env.get("WAYLAND_DISPLAY"):
        candidates.append(["wl-copy"])
    if env.get("DISPLAY"):
        candidates += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
    for cmd in candidates:
        if shutil.which(cmd[0]):
            return cmd
    return None


def _run_copy(cmd: list[str], text: str) -> bool:
    try:
        proc = subprocess.run(cmd, input=text.encode(), timeout=5, check=False, capture_output=True)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def copy(app: Any, text: str, what: str, fallback_file: Path | None) -> str:
    """Copy `text` (the last answer, the selection) and say truthfully how; `app` is the Textual
    App (its copy_to_clipboard sends OSC 52)."""
    size = f"{what} ({len(text)} characters)"
    support = osc52_support()
    if support is not False:
        app.copy_to_clipboard(text)
    if support is True:
        return f"Copied {size} to the clipboard."
    command = system_copy_command()
    if command is not None and _run_copy(command, text):
        return f"Copied {size} to the clipboard (with {command[0]})."
    saved = ""
    if fallback_file is not None:
        try:
            fallback_file.write_text(text, encoding="utf-8")
            saved = f" It is saved in {fallback_file}: open it, or select the text with the mouse (hold Shift in most terminals)."
        except OSError:
            pass
    if support is None:
        return (
            f"Sent {size} to the terminal's clipboard (OSC 52); this terminal may not accept "
            f"it (in tmux: set -g set-clipboard on).{saved}"
        )
    return f"This terminal cannot receive the clipboard (no OSC 52): nothing was copied.{saved}"
