"""Pilot tests of input completion: the `/` command menu and git-aware `@path` mentions."""

from __future__ import annotations

import subprocess

from vibe.tui.widgets.messages import Notice, UserMessage

from .conftest import scripted_app, texts, type_text, wait_for


async def test_slash_menu_completes_commands(home, workdir):
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await type_text(pilot, "/st")
        assert app.prompt.menu.display
        assert [v for v, _ in app.prompt.menu.candidates.items] == ["/status"]
        await pilot.press("tab")
        assert app.prompt.text == "/status " and not app.prompt.menu.display
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("session" in t for t in texts(app, Notice)))
        await type_text(pilot, "/c")
        names = [v for v, _ in app.prompt.menu.candidates.items]
        # Fuzzy: the commands that start with c first, in table order, then /mcp (c inside).
        assert names == ["/compact", "/clear", "/config", "/copy", "/mcp"]
        await pilot.press("down", "enter")
        assert app.prompt.text == "/clear "


async def test_unknown_command_is_reported(home, workdir):
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("/nope")
        assert "unknown command /nope; /help lists them" in texts(app, Notice)


async def test_at_mention_completes_git_files_and_sends_content(home, workdir):
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    (workdir / "src").mkdir()
    (workdir / "src" / "main.py").write_text("print('hello from main')\n")
    (workdir / "src" / "mailer.log").write_text("ignored")
    (workdir / ".gitignore").write_text("*.log\n")
    app, provider = scripted_app(home, workdir, [{"text": "seen"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await type_text(pilot, "explain @src/ma")
        assert [v for v, _ in app.prompt.menu.candidates.items] == ["@src/main.py"]
        await pilot.press("tab")
        assert app.prompt.text == "explain @src/main.py "
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.busy and provider.requests)
        sent = provider.requests[0].messages[-1].content
        assert sent.startswith("explain @src/main.py")
        assert "<file path=\"src/main.py\">\nprint('hello from main')" in sent
        assert texts(app, UserMessage) == ["explain @src/main.py "]


async def test_clear_then_resume_brings_the_conversation_back(home, workdir):
    from vibe.tui.screens.picker import PickerScreen
    from vibe.tui.widgets.messages import AssistantText

    app, provider = scripted_app(home, workdir, [{"text": "first answer"}, {"text": "later"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("remember this")
        await wait_for(pilot, lambda: not app.busy and provider.requests)
        old_id = app.runtime.session.id
        await app.submit("/clear")
        assert app.runtime.session.id != old_id and not texts(app, UserMessage)
        await app.submit("/resume")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        assert [k.rsplit("/", 1)[-1] for k, _ in app.screen.items] == [old_id]
        await pilot.press("enter")
        await wait_for(pilot, lambda: texts(app, AssistantText) == ["first answer"])
        assert app.runtime.session.id == old_id
        await app.submit("and now?")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 2)
        contents = [m.content for m in provider.requests[1].messages[1:]]
        assert contents == ["remember this", "first answer", "and now?"]


async def test_compact_summarises_or_explains_why_not(home, workdir):
    app, provider = scripted_app(home, workdir, [{"text": "answer"}, {"text": "SUMMARY: hi"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("/compact")
        assert any(t.startswith("cannot compact: ") for t in texts(app, Notice))
        await app.submit("hello")
        await wait_for(pilot, lambda: not app.busy and provider.requests)
        await app.submit("/compact focus on tests")
        await wait_for(pilot, lambda: any("Context compacted" in t for t in texts(app, Notice)))
        assert len(provider.requests) == 2


async def test_cursor_stops_blinking_when_idle_and_wakes_on_a_key(home, workdir, monkeypatch):
    from vibe.tui.widgets import prompt as prompt_module

    monkeypatch.setattr(prompt_module, "BLINK_FOR_S", 0.75)  # stops in the off phase
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await wait_for(pilot, lambda: not app.prompt.cursor_blink)  # idle: no blink repaints
        await pilot.press("x")
        assert app.prompt.cursor_blink and app.prompt.text == "x"
        await wait_for(pilot, lambda: not app.prompt.cursor_blink)
        # the steady cursor is drawn even if blinking stopped in its "off" phase
        await pilot.pause()
        cursor = app.prompt._theme.cursor_style
        line = app.prompt.render_line(0)
        assert any(seg.style and seg.style.bgcolor == cursor.bgcolor for seg in line)
