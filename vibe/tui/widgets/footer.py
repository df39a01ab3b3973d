"""The status line under the prompt: cwd, mode, model, context use against threshold, cost."""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual.widgets import Static


def short_path(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home) :] if text == home or text.startswith(home + os.sep) else text


def format_tokens(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


class StatusFooter(Static):
    def __init__(self, cwd: Path) -> None:
        super().__init__(id="status-footer")
        self.cwd = cwd
        self.mode = ""
        self.model = ""
        self.used = 0
        self.threshold = 0
        self.cost = 0.0

    def on_mount(self) -> None:
        self.refresh_line()

    def set_state(self, **fields) -> None:
        for key, value in fields.items():
            setattr(self, key, value)
        self.refresh_line()

    def refresh_line(self) -> None:
        pct = f" ({100 * self.used / self.threshold:.0f}%)" if self.threshold else ""
        tokens = f"{format_tokens(self.used)}/{format_tokens(self.threshold)} tokens{pct}"
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(short_path(self.cwd), style="dim")
        line.append("  ")
        line.append(f"⏵ {self.mode}", style="bold magenta")
        line.append("  ")
        line.append(self.model, style="bold cyan")
        line.append(f"  {tokens}  ${self.cost:.4f}", style="dim")
        self.update(line)
