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
        # (the card's live line is redrawn at most every few frames: wait for it)
        progress = "[explore · 1 tools] read_file .env"
        await wait_for(pilot, lambda: progress in cards(app)[0].output.text)
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


def _transcript_screen(app):
    from vibe.tui.screens.subagent import SubagentScreen

    return app.screen if isinstance(app.screen, SubagentScreen) else None


def _shown(screen) -> list[tuple[str, str]]:
    """What the transcript screen shows: (kind, text) per entry."""
    from vibe.tui.widgets.messages import AssistantText, UserMessage

    out = []
    for w in screen.log_view.entries:
        if isinstance(w, UserMessage | AssistantText):
            out.append((type(w).__name__, w.text))
        elif isinstance(w, ToolCard):
            out.append((f"{w.tool_name}:{w.status}", w.result))
    return out


async def test_task_card_opens_the_child_transcript_live(home, workdir, tmp_path):
    """The card opens the child's conversation while the child runs (a pre_tool hook holds its
    grep until a flag file appears) and follows it to the child's answer; Esc closes it; once
    done, a click opens the saved transcript."""
    (workdir / "notes.txt").write_text("the answer is 42\n")
    flag = tmp_path / "go"
    hook = tmp_path / "hold.py"
    hook.write_text(
        "import json, pathlib, sys, time\njson.load(sys.stdin)\n"
        f"flag = pathlib.Path({str(flag)!r})\n"
        "end = time.time() + 20\nwhile not flag.exists() and time.time() < end:\n"
        "    time.sleep(0.02)\n"
    )
    (home / "hooks.toml").write_text(
        f'[[hooks]]\nname = "hold"\ntype = "pre_tool"\nmatch = "grep"\n'
        f"command = {json.dumps(f'{sys.executable} {hook}')}\n"
    )
    script = [
        {"tool_calls": [{"name": "task", "arguments": {"task": "find the answer"}, "id": "t1"}]},
        {"tool_calls": [{"name": "read_file", "arguments": {"path": "notes.txt"}, "id": "r1"}]},
        {"tool_calls": [{"name": "grep", "arguments": {"pattern": "answer"}, "id": "g1"}]},
        {"text": "the child says 42"},
        {"text": "the parent says 42"},
    ]
    app, _ = scripted_app(home, workdir, script)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("what is the answer?")
        await wait_for(pilot, lambda: cards(app) and "grep" in cards(app)[0].output.text)
        (card,) = cards(app)
        assert "Enter/click: transcript" in str(card.header.render())
        card.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: _transcript_screen(app) and _shown(app.screen))
        screen = app.screen
        await wait_for(pilot, lambda: ("grep:running", "") in _shown(screen))
        shown = _shown(screen)
        assert shown[0] == ("UserMessage", "find the answer")
        assert shown[1][0] == "read_file:ok" and "the answer is 42" in shown[1][1]
        assert "explore subagent · running" in str(screen.title_bar.render())
        await pilot.press("escape")  # closes the screen; the child is not interrupted
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0])
        assert app.busy and card.status == "running"
        await pilot.press("enter")  # the card has the focus back
        await wait_for(pilot, lambda: _transcript_screen(app) and _shown(app.screen))
        screen = app.screen
        await wait_for(pilot, lambda: ("grep:running", "") in _shown(screen))
        flag.write_text("")  # the child goes on: the open screen follows its transcript
        await wait_for(pilot, lambda: ("AssistantText", "the child says 42") in _shown(screen))
        assert _shown(screen)[2][0] == "grep:ok"
        await wait_for(pilot, lambda: not app.busy)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0])
        assert not app.busy and card.status == "ok"  # Esc closed the screen, nothing else
        assert card.data["transcript"].endswith("tasks/t1")
        await pilot.click(card)
        await wait_for(pilot, lambda: _transcript_screen(app) and _shown(app.screen))
        shown = _shown(app.screen)
        assert [kind for kind, _ in shown] == [
            "UserMessage",
            "read_file:ok",
            "grep:ok",
            "AssistantText",
        ]
        assert "explore subagent · ok" in str(app.screen.title_bar.render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0])
