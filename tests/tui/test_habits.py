"""Pilot tests of the everyday habits: Ctrl+G in $EDITOR, fuzzy `/` and `@` menus, /theme saved
in config, session titles and /rename, the /resume and `--resume` picker of this folder's
sessions, terminal notifications when unfocused, and /copy saying what really happened."""

from __future__ import annotations

import json
import subprocess
import time
import tomllib

from textual import events

from vibe.session import Session
from vibe.tui.screens.picker import PickerScreen
from vibe.tui.widgets.messages import AssistantText, Notice, UserMessage

from .conftest import approval_open, scripted_app, texts, type_text, wait_for


async def test_ctrl_g_edits_the_prompt_in_the_editor(home, workdir, tmp_path, monkeypatch):
    editor = tmp_path / "fake-editor"
    editor.write_text('#!/bin/sh\nprintf "%s\\nwritten in the editor\\n" "$(cat "$1")" > "$1"\n')
    editor.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{editor}")
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await type_text(pilot, "draft")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: "editor" in app.prompt.text)
        assert app.prompt.text == "draft\nwritten in the editor"


async def test_a_failing_editor_leaves_the_prompt_alone(home, workdir, monkeypatch):
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "false")
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await type_text(pilot, "keep")
        await pilot.press("ctrl+g")
        await wait_for(
            pilot, lambda: any("unchanged" in str(n.message) for n in app._notifications)
        )
        assert app.prompt.text == "keep"


async def test_menus_match_fuzzily(home, workdir):
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    (workdir / "src").mkdir()
    (workdir / "src" / "main.py").write_text("x = 1\n")
    (workdir / "README.md").write_text("readme\n")
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await type_text(pilot, "/rwd")
        assert [v for v, _ in app.prompt.menu.candidates.items] == ["/rewind"]
        await pilot.press("escape")
        app.prompt.set_value("")
        await type_text(pilot, "see @mnpy")
        assert [v for v, _ in app.prompt.menu.candidates.items] == ["@src/main.py"]
        await pilot.press("tab")
        assert app.prompt.text == "see @src/main.py "


async def test_theme_is_applied_and_saved_in_config(home, workdir):
    from vibe.config import load_config

    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("/theme")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        await type_text(pilot, "nord")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.theme == "nord")
        await wait_for(pilot, lambda: any("saved" in t for t in texts(app, Notice)))
        await app.submit("/theme no-such-theme")
        assert any("unknown theme" in t for t in texts(app, Notice))
    saved = (home / "config.toml").read_text()
    assert tomllib.loads(saved)["theme"] == "nord"
    assert saved.startswith('active_model = "fake"')  # the rest of the file is as it was
    # The next start uses it.
    assert load_config(workdir, home=home).config.theme == "nord"
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        assert app.theme == "nord"


async def test_title_from_the_first_message_and_rename(home, workdir):
    app, _ = scripted_app(home, workdir, [{"text": "hi"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("fix the login bug\nwith details below")
        await wait_for(pilot, lambda: not app.busy and texts(app, AssistantText))
        session = app.runtime.session
        assert session.title == "fix the login bug"
        await app.submit("/rename Login work")
        assert "Renamed this session to “Login work”." in texts(app, Notice)
    meta = json.loads((session.path / "meta.json").read_text())
    assert meta["title"] == "Login work"


def saved_session(home, cwd, title: str, answer: str, updated: float) -> str:
    session = Session.create(home, cwd, model="fake")
    session.append(message("user", title))
    session.append(message("assistant", answer))
    session.save_meta()
    session.meta["updated"] = updated
    (session.path / "meta.json").write_text(json.dumps(session.meta))
    session.close()
    return session.id


def message(role: str, content: str):
    from vibe.messages import Message

    return Message(role, content)


def crowd(home, folder, n: int) -> None:
    """`n` sessions of another folder, newer than everything else (written by hand: fast)."""
    root = home / "sessions"
    for i in range(n):
        path = root / f"29990101-000000-{i:06x}"
        path.mkdir(parents=True)
        meta = {"id": path.name, "cwd": str(folder), "model": "fake", "updated": time.time()}
        (path / "meta.json").write_text(json.dumps(meta))
        (path / "messages.jsonl").write_text("")


async def test_resume_without_an_id_picks_among_all_of_this_folders_sessions(
    home, workdir, tmp_path
):
    old = saved_session(home, workdir, "the old task", "old answer", time.time() - 7200)
    recent = saved_session(home, workdir, "the recent task", "recent answer", time.time() - 60)
    other = tmp_path / "elsewhere"
    other.mkdir()
    crowd(home, other, 210)  # newer sessions of another folder do not push ours out
    app, _ = scripted_app(home, workdir, [], pick_session=True)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        labels = [label for _, label in app.screen.items]
        assert len(labels) == 2
        assert labels[0].startswith("the recent task") and recent in labels[0]
        assert labels[1].startswith("the old task") and "2h ago" in labels[1]
        await type_text(pilot, "old")  # the picker filters as you type
        await pilot.press("enter")
        await wait_for(pilot, lambda: texts(app, AssistantText) == ["old answer"])
        assert app.runtime.session.id == old
        # /resume in the TUI: the other sessions of this folder, not the current one.
        await app.submit("/resume")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        assert [k.rsplit("/", 1)[-1] for k, _ in app.screen.items] == [recent]
        await pilot.press("enter")
        await wait_for(pilot, lambda: texts(app, UserMessage) == ["the recent task"])
        assert app.runtime.session.id == recent


def test_vibe_run_resume_needs_an_id(home, workdir, capsys, monkeypatch):
    from vibe.cli import main

    monkeypatch.chdir(workdir)
    assert main(["run", "hello", "--resume"]) == 1
    assert "--resume needs a session id" in capsys.readouterr().err


async def test_notifications_only_when_the_terminal_is_not_focused(home, workdir):
    config = home / "config.toml"
    config.write_text('notifications = "osc9"\n' + config.read_text())
    touch = {"tool_calls": [{"name": "bash", "arguments": {"command": "touch x"}}]}
    app, _ = scripted_app(home, workdir, [touch, {"text": "ok"}, touch, {"text": "ok"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        notifier = app.ctl.notifier
        await app.submit("one")
        await wait_for(pilot, lambda: approval_open(app))
        assert notifier.sent == []  # focused: nothing
        await pilot.press("1")
        await wait_for(pilot, lambda: not app.busy)
        app.post_message(events.AppBlur())
        await wait_for(pilot, lambda: not notifier.focused)
        await app.submit("two")
        await wait_for(pilot, lambda: approval_open(app))
        assert notifier.sent == [("osc9", "vibe: bash waits for your approval")]
        await pilot.press("1")
        await wait_for(pilot, lambda: not app.busy)


async def test_copy_says_when_the_terminal_cannot_receive_it(home, workdir, monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "TMUX", "STY", "KITTY_WINDOW_ID", "WT_SESSION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TERM_PROGRAM", "Apple_Terminal")
    app, _ = scripted_app(home, workdir, [{"text": "the answer"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("/copy")
        assert "Nothing to copy yet." in texts(app, Notice)
        await app.submit("question")
        await wait_for(pilot, lambda: not app.busy and texts(app, AssistantText))
        await app.submit("/copy")
        said = texts(app, Notice)[-1]
        assert said.startswith("This terminal cannot receive the clipboard (no OSC 52)")
        saved = app.runtime.session.path / "copy.md"
        assert str(saved) in said and saved.read_text() == "the answer"
        monkeypatch.setenv("TERM_PROGRAM", "WezTerm")
        await app.submit("/copy")
        assert texts(app, Notice)[-1] == "Copied the last answer (10 characters) to the clipboard."
        assert app.clipboard == "the answer"


async def test_ctrl_c_copies_a_mouse_selection(home, workdir, monkeypatch):
    from textual.selection import Selection

    monkeypatch.setenv("TERM_PROGRAM", "WezTerm")
    monkeypatch.delenv("TMUX", raising=False)
    app, _ = scripted_app(home, workdir, [{"text": "select me"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("hello")
        await wait_for(pilot, lambda: not app.busy and texts(app, AssistantText))
        (user,) = [w for w in app.chat.entries if isinstance(w, UserMessage)]
        app.screen.selections = {user: Selection(None, None)}  # what a mouse drag leaves
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: any("the selection" in t for t in texts(app, Notice)))
        assert app.clipboard == "hello" and not app.screen.selections
