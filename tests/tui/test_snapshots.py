"""Snapshots of the main screens (pytest-textual-snapshot; update with --snapshot-update)."""

from __future__ import annotations

import pytest

from vibe.agent.approval import ApprovalRequest
from vibe.events import ToolCallFinished, ToolCallStarted, ToolOutput
from vibe.tui.screens.approval import ApprovalScreen
from vibe.tui.screens.confirm import ConfirmScreen
from vibe.tui.screens.onboarding import OnboardingScreen

from .conftest import approval_open, scripted_app, type_text, wait_for

SIZE = (100, 32)
USAGE = {"prompt_tokens": 2400, "completion_tokens": 100}
ANSWER = (
    "Here is the plan:\n\n1. Read `app.py`\n2. Fix the bug\n\n"
    "```python\ndef add(a, b):\n    return a + b\n```\n\nDone."
)
DIFF = "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n-def add(a, b): return a - b\n+def add(a, b): return a + b\n"


@pytest.fixture(autouse=True)
def fixed_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the footer shows ~/work on every machine


def snapshot_app(home, workdir, script):
    """The real app with a steady cursor: a blink timer would decide what the picture shows."""
    app, _ = scripted_app(home, workdir, script, cursor_blink=False)
    return app


async def ready(pilot, app) -> None:
    """Wait for the agent; pin the footer's token count (the system prompt has today's date)."""
    await wait_for(pilot, lambda: app.runtime is not None)
    app.footer_bar.set_state(used=1900)


def test_chat_after_a_streamed_answer(home, workdir, snap_compare):
    script = [{"reasoning": "The user wants a plan.", "text": ANSWER, "usage": USAGE}]
    app = snapshot_app(home, workdir, script)

    async def run_before(pilot):
        await ready(pilot, app)
        await app.submit("fix the add function")
        await wait_for(pilot, lambda: not app.busy and app.router.last_answer)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_tool_cards_with_diff_todos_and_error(home, workdir, snap_compare):
    app = snapshot_app(home, workdir, [])
    todos = [
        {"content": "Read the code", "status": "completed"},
        {"content": "Fix add()", "status": "in_progress"},
        {"content": "Run the tests", "status": "pending"},
    ]
    events = [
        ToolCallStarted("c1", "edit", {"path": "app.py"}, ""),
        ToolCallFinished("c1", "edit", "ok", "edited app.py", diff=DIFF, duration_ms=12),
        ToolCallStarted("c2", "todo", {"todos": todos}, ""),
        ToolCallFinished("c2", "todo", "ok", "3 items", data={"todos": todos}, duration_ms=1),
        ToolCallStarted("c3", "bash", {"command": "pytest -q"}, ""),
        ToolOutput("c3", "F.\nFAILED test_add\n"),
        ToolCallFinished(
            "c3", "bash", "error", "F.\nFAILED test_add\nexit code 1", duration_ms=2300
        ),
    ]

    async def run_before(pilot):
        await ready(pilot, app)
        for event in events:
            await app.router.route(event)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_approval_dialog(home, workdir, snap_compare):
    app = snapshot_app(home, workdir, [])
    request = ApprovalRequest(
        "c1",
        "bash",
        {"command": "git commit -am 'fix add'"},
        "git commit changes the repo",
        "git *",
    )

    async def run_before(pilot):
        await ready(pilot, app)
        app.push_screen(ApprovalScreen(request))
        await wait_for(pilot, lambda: approval_open(app))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_approval_dialog_shows_the_edit_diff(home, workdir, snap_compare):
    (workdir / "app.py").write_text("def add(a, b):\n    return a - b\n")
    app = snapshot_app(home, workdir, [])
    request = ApprovalRequest(
        "c1",
        "edit",
        {"path": "app.py", "old_string": "a - b", "new_string": "a + b", "replace_all": False},
        "edit changes a file",
        "app.py",
    )

    async def run_before(pilot):
        await ready(pilot, app)
        app.push_screen(ApprovalScreen(request, cwd=workdir))
        await wait_for(pilot, lambda: approval_open(app))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_command_menu(home, workdir, snap_compare):
    app = snapshot_app(home, workdir, [])

    async def run_before(pilot):
        await ready(pilot, app)
        await type_text(pilot, "/c")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_onboarding(home, workdir, snap_compare, monkeypatch):
    from vibe.providers import factory

    monkeypatch.setattr(factory, "demo_installed", lambda: True)
    (home / "config.toml").unlink()
    app = snapshot_app(home, workdir, [])

    async def run_before(pilot):
        await wait_for(pilot, lambda: isinstance(app.screen, OnboardingScreen))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_trust_prompt(home, workdir, snap_compare):
    (workdir / "AGENTS.md").write_text("rules\n")
    app = snapshot_app(home, workdir, [])

    async def run_before(pilot):
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
