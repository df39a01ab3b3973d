"""Pilot tests of the chat: streaming, reasoning, queueing, interrupt, !cmd, history, keys."""

from __future__ import annotations

from vibe.tui.widgets.messages import AssistantText, Notice, ShellOutput, ThoughtBlock, UserMessage

from .conftest import scripted_app, texts, type_text, wait_for


async def test_streams_answer_and_folds_reasoning(home, workdir):
    app, provider = scripted_app(
        home, workdir, [{"reasoning": "let me think", "text": "Hello **world**, done."}]
    )
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await type_text(pilot, "hi there")
        await pilot.press("enter")
        await wait_for(pilot, lambda: texts(app, AssistantText) and not app.busy)
        assert texts(app, UserMessage) == ["hi there"]
        assert texts(app, AssistantText) == ["Hello **world**, done."]
        thought = next(w for w in app.chat.entries if isinstance(w, ThoughtBlock))
        assert thought.collapsed and thought.body.text == "let me think"
        assert provider.requests[0].messages[-1].content == "hi there"
        # the footer shows the model, the mode and the token count against the threshold
        footer = str(app.footer_bar.render())
        assert "fake" in footer and "Default" in footer and "/10.0k tokens" in footer


async def test_messages_typed_while_busy_are_queued(home, workdir):
    app, provider = scripted_app(
        home, workdir, [{"text": "first answer " * 20, "slow": 0.01}, {"text": "second answer"}]
    )
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("one")
        await wait_for(pilot, lambda: app.busy)
        await app.submit("two")
        assert [t for t, _ in app.pending] == ["two"]
        assert "1 queued" in str(app.query_one("#activity").render())
        await wait_for(pilot, lambda: len(provider.requests) == 2 and not app.busy)
        assert texts(app, UserMessage) == ["one", "two"]
        assert texts(app, AssistantText)[-1] == "second answer"
        # the second request carries the whole history, in order
        contents = [m.content for m in provider.requests[1].messages if m.role != "system"]
        assert contents == ["one", ("first answer " * 20), "two"]


async def test_escape_interrupts_and_history_stays_consistent(home, workdir):
    app, provider = scripted_app(
        home, workdir, [{"text": "word " * 400, "slow": 0.01}, {"text": "ok"}]
    )
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("long please")
        await wait_for(
            pilot, lambda: texts(app, AssistantText) and len(texts(app, AssistantText)[0]) > 20
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.busy)
        assert "Interrupted." in texts(app, Notice)
        partial = texts(app, AssistantText)[0]
        assert 0 < len(partial) < len("word " * 400)
        # the next turn works and the model sees the partial answer it was cut off in
        await app.submit("again")
        await wait_for(pilot, lambda: len(provider.requests) == 2 and not app.busy)
        roles = [m.role for m in provider.requests[1].messages]
        assert roles == ["system", "user", "assistant", "user"]


async def test_escape_returns_queued_messages_to_the_input(home, workdir):
    app, _ = scripted_app(home, workdir, [{"text": "word " * 400, "slow": 0.01}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("first")
        await wait_for(pilot, lambda: app.busy)
        await app.submit("second")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.busy)
        assert app.prompt.text == "second" and not app.pending


async def test_bang_runs_a_shell_command_without_the_model(home, workdir):
    (workdir / "marker.txt").write_text("x")
    app, provider = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await type_text(pilot, "!ls; exit 3")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: any(isinstance(w, ShellOutput) and w.exit_code == 3 for w in app.chat.entries),
        )
        out = next(w for w in app.chat.entries if isinstance(w, ShellOutput))
        assert out.output == "marker.txt" and out.border_subtitle == "exit 3"
        assert provider.requests == []


async def test_multiline_input_and_persistent_history(home, workdir):
    app, _ = scripted_app(home, workdir, [{"text": "a"}, {"text": "b"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await type_text(pilot, "line1")
        await pilot.press("ctrl+j")
        await type_text(pilot, "line2")
        assert app.prompt.text == "line1\nline2"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.busy and texts(app, AssistantText))
        await type_text(pilot, "draft")
        await pilot.press("up")
        assert app.prompt.text == "line1\nline2"
        await pilot.press("down")
        assert app.prompt.text == "draft"
    # a new app in the same $VIBE_HOME remembers the entry
    app2, _ = scripted_app(home, workdir, [])
    async with app2.run_test() as pilot:
        await pilot.press("up")
        assert app2.prompt.text == "line1\nline2"


async def test_ctrl_c_clears_then_interrupts_then_asks(home, workdir):
    app, _ = scripted_app(home, workdir, [{"text": "word " * 400, "slow": 0.01}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("go")
        await wait_for(pilot, lambda: app.busy)
        await type_text(pilot, "abc")
        await pilot.press("ctrl+c")
        assert app.prompt.text == "" and app.busy
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not app.busy)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0])
        assert app.is_running
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running)
        assert app.return_value == 0


async def test_ctrl_d_twice_quits(home, workdir):
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await pilot.press("ctrl+d")
        assert app.is_running
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: not app.is_running)
