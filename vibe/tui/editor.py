"""Ctrl+G: edit the prompt in $VISUAL / $EDITOR (default vi). The TUI is suspended while the
editor runs; what the file holds when the editor exits becomes the prompt."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any


def editor_command(env: dict[str, str] | None = None) -> list[str]:
    env = dict(os.environ) if env is None else env
    value = env.get("VISUAL") or env.get("EDITOR") or "vi"
    try:
        return shlex.split(value) or ["vi"]
    except ValueError:
        return [value]


def _run(command: list[str]) -> int:
    return subprocess.run(command, check=False).returncode


async def edit_prompt(app: Any) -> None:
    """Open the prompt's text in the editor; on a clean exit the prompt takes the new text."""
    from textual.app import SuspendNotSupported

    fd, name = tempfile.mkstemp(prefix="vibe-prompt-", suffix=".md")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(app.prompt.text)
        command = [*editor_command(), str(path)]
        try:
            try:
                with app.suspend():
                    code = _run(command)
            except SuspendNotSupported:  # no terminal to hand over (tests, web): run it aside
                code = await asyncio.to_thread(_run, command)
        except OSError as exc:
            app.notify(
                f"cannot start the editor {command[0]!r}: {exc.strerror or exc}; set $EDITOR",
                severity="error",
            )
            return
        if code != 0:
            app.notify(
                f"{command[0]} exited with {code}: the prompt is unchanged", severity="warning"
            )
            return
        text = path.read_text(encoding="utf-8").rstrip("\n")
        app.prompt.set_value(text)
        app.prompt.focus()
    finally:
        path.unlink(missing_ok=True)
