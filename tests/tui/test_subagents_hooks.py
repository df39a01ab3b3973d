"""Pilot tests: a subagent's approval request opens the same dialog, saying which subagent
asks; the task card shows the child's progress; a hook denial is shown in the chat."""

from __future__ import annotations

import json
import sys

from vibe.tui.widgets.messages import Notice
from vibe.tui.widgets.tool_card import ToolCard

from .conftest import approval_open, scripted_app, texts, wait_for


def cards(app) -> list[ToolCard]:
    return [w for w in app.chat.entries if isinstance(w, ToolCard)]


async def test_child_approval_names_the_subagent(home, workdir):
    (workdir / ".env").write_text("TOKEN=abc\n")
    script = [
        {"tool_calls": [{"name": "task", "arguments": {"task": "read .env"}, "id": "t1"}]},
        {"tool_calls": [{"name": "read_file", "arguments": {"path": ".env"}, "id": "r1"}]},
        {"text": "TOKEN is set"},
        {"text": "the subagent says TOKEN is set"},
    ]
    app, _ = scripted_app(home, workdir, script)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("check .env")
        await wait_for(pilot, lambda: approval_open(app))
        title = str(app.screen.query_one("#approval-title").render())
        assert "read_file" in title and "explore subagent" in title
        # The task card shows the child's progress live: its current action and tool count.
        (card,) = cards(app)
        assert "[explore · 1 tools] read_file .env" in card.output.text
        await pilot.press("1")
        await wait_for(pilot, lambda: not app.busy)
        (card,) = cards(app)
        assert card.status == "ok" and card.result.startswith("TOKEN is set")


async def test_hook_denial_is_shown(home, workdir, tmp_path):
    hook = tmp_path / "deny.py"
    hook.write_text(
        "import json, sys\njson.load(sys.stdin)\n"
        "print(json.dumps({'decision': 'deny', 'reason': 'not on main'}))\n"
    )
    (home / "hooks.toml").write_text(
        f'[[hooks]]\nname = "guard"\ntype = "pre_tool"\ncommand = {json.dumps(f"{sys.executable} {hook}")}\n'
    )
    script = [
        {"tool_calls": [{"name": "read_file", "arguments": {"path": "x.txt"}}]},
        {"text": "ok"},
    ]
    (workdir / "x.txt").write_text("x\n")
    app, _ = scripted_app(home, workdir, script)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("read")
        await wait_for(pilot, lambda: not app.busy and cards(app))
        (card,) = cards(app)
        assert card.status == "denied" and "not on main" in card.result
        assert any("hook guard" in t and "not on main" in t for t in texts(app, Notice))
