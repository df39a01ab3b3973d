"""Fixtures for the TUI tests: a temporary $VIBE_HOME with a keyless model, a work folder, and
an app built by the real builder with the provider pointed at a script."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vibe.config import load_config
from vibe.providers.scripted import ScriptedProvider
from vibe.tui.app import AppOptions, VibeApp

CONFIG = """\
active_model = "fake"

[[providers]]
name = "fakeprov"
api_base = "{url}"
api_key_env_var = ""
backend = "generic"

[[models]]
name = "fake-model"
provider = "fakeprov"
alias = "fake"
auto_compact_threshold = 10000

[[models]]
name = "other-model"
provider = "fakeprov"
alias = "other"
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(CONFIG.format(url="http://127.0.0.1:9/v1"))
    monkeypatch.setenv("VIBE_HOME", str(home))
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    return home


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def scripted_app(
    home: Path, workdir: Path, script: list[dict[str, Any]], **options: Any
) -> tuple[VibeApp, ScriptedProvider]:
    """The app as `vibe` builds it, except that every model is served by one ScriptedProvider."""
    provider = ScriptedProvider(script, chunk_size=options.pop("chunk_size", 4))
    loaded = load_config(workdir, home=home)
    opts = AppOptions(
        cwd=workdir,
        provider_factory=lambda model, pconf, loaded: provider,
        approval_grace_s=options.pop("approval_grace_s", 0.0),
        **options,
    )
    return VibeApp(loaded, opts), provider


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.01)


async def type_text(pilot, text: str) -> None:
    await pilot.press(*[_key(c) for c in text])


def _key(char: str) -> str:
    names = {" ": "space", "/": "slash", "@": "at", "!": "exclamation_mark", ".": "full_stop"}
    return names.get(char, char)


def texts(app: VibeApp, cls: type) -> list[str]:
    """The `text` of every mounted chat entry of this class."""
    return [w.text for w in app.chat.entries if isinstance(w, cls)]


def approval_open(app) -> bool:
    """The approval dialog is on screen and composed (its options can take keys)."""
    from vibe.tui.screens.approval import ApprovalScreen

    screen = app.screen
    if not isinstance(screen, ApprovalScreen) or not screen.query("#approval-feedback"):
        return False
    # Nested containers mount their children a step later than their siblings.
    return not screen.preview.body or bool(screen.query("#approval-args"))
