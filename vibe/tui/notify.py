"""Terminal notifications when an approval or a question waits, or a long turn ends, while the
terminal is not focused (Textual reports focus changes as AppFocus/AppBlur). `notifications` in
config.toml: `auto` (OSC 9 where the terminal shows it, else the bell), `bell`, `osc9`, `off`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

_OSC9_PROGRAMS = ("iTerm.app", "WezTerm", "ghostty")
MODES = ("auto", "bell", "osc9", "off")


def auto_channel(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if env.get("TMUX") or env.get("STY"):  # escapes would not reach the outer terminal
        return "bell"
    if env.get("TERM_PROGRAM") in _OSC9_PROGRAMS or env.get("KITTY_WINDOW_ID"):
        return "osc9"
    return "bell"


class Notifier:
    def __init__(self, app: Any, mode: str = "auto") -> None:
        self.app = app
        self.mode = mode if mode in MODES else "auto"
        self.focused = True  # until the terminal says otherwise
        self.sent: list[tuple[str, str]] = []  # (channel, message), newest last

    @property
    def channel(self) -> str:
        return auto_channel() if self.mode == "auto" else self.mode

    def notify(self, message: str) -> bool:
        """Send the notification unless the terminal is focused or notifications are off."""
        channel = self.channel
        if self.focused or channel == "off":
            return False
        if channel == "osc9":
            clean = "".join(c for c in message if c.isprintable())[:200]
            self._write(f"\x1b]9;{clean}\x07")
        else:
            self.app.bell()
        self.sent.append((channel, message))
        return True

    def _write(self, data: str) -> None:
        driver = getattr(self.app, "_driver", None)
        if driver is not None:
            driver.write(data)
            driver.flush()
