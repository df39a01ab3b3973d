"""Pilot tests of the approval dialog: choices 1–4 and their effect, keys, the typing grace."""

from __future__ import annotations

import tomllib

from vibe.tui.widgets.tool_card import ToolCard

from .conftest import approval_open, scripted_app, type_text, wait_for


def touch(name: str) -> dict:
    return {"tool_calls": [{"name": "bash", "arguments": {"command": f"touch {name}"}}]}


def asking(app) -> bool:
    return approval_open(app)


def cards(app) -> list[ToolCard]:
    return [w for w in app.chat.entries if isinstance(w, ToolCard)]


async def start(pilot, app, prompt: str = "make files") -> None:
    await wait_for(pilot, lambda: app.runtime is not None)
    await app.submit(prompt)
    await wait_for(pilot, lambda: asking(app))


async def test_allow_once_runs_the_tool_and_asks_again_next_time(home, workdir):
    script = [touch("a.txt"), {"text": "done"}, touch("b.txt"), {"text": "done"}]
    app, _ = scripted_app(home, workdir, script)
    async with app.run_test() as pilot:
        await start(pilot, app)
        assert "touch a.txt" in str(app.screen.query_one("#approval-args").render())
        await pilot.press("1")
        await wait_for(pilot, lambda: not app.busy)
        assert (workdir / "a.txt").exists() and cards(app)[0].status == "ok"
        await app.submit("another")
        await wait_for(pilot, lambda: asking(app))
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.busy)
        assert (workdir / "b.txt").exists()


async def test_allow_for_session_does_not_ask_again(home, workdir):
    script = [touch("a.txt"), {"text": "done"}, touch("b.txt"), {"text": "done"}]
    app, _ = scripted_app(home, workdir, script)
    async with app.run_test() as pilot:
        await start(pilot, app)
        await pilot.press("2")
        await wait_for(pilot, lambda: not app.busy)
        await app.submit("another")
        await wait_for(pilot, lambda: not app.busy and len(cards(app)) == 2)
        assert (workdir / "b.txt").exists() and cards(app)[1].status == "ok"
        assert not (home / "config.toml").read_text().count("allowlist")


async def test_always_allow_is_saved_to_config(home, workdir):
    app, _ = scripted_app(home, workdir, [touch("a.txt"), {"text": "done"}])
    async with app.run_test() as pilot:
        await start(pilot, app)
        await pilot.press("3")
        await wait_for(pilot, lambda: not app.busy)
    config = tomllib.loads((home / "config.toml").read_text())
    assert (workdir / "a.txt").exists()
    assert config["tools"]["bash"]["allowlist"] == ["touch *"]
    assert config["models"][0]["alias"] == "fake"  # the rest of the file is kept


async def test_always_with_an_unparsable_config_applies_for_the_session_and_warns(home, workdir):
    script = [touch("a.txt"), {"text": "done"}, touch("b.txt"), {"text": "done"}]
    app, _ = scripted_app(home, workdir, script)
    async with app.run_test() as pilot:
        await start(pilot, app)
        broken = (home / "config.toml").read_text() + "oops = = 1\n"
        (home / "config.toml").write_text(broken)  # edited by hand while vibe runs
        await pilot.press("3")
        await wait_for(pilot, lambda: not app.busy)
        assert (workdir / "a.txt").exists()
        warnings = [n for n in app._notifications if n.severity == "warning"]
        assert len(warnings) == 1
        assert "for this session only" in warnings[0].message
        assert "not valid TOML" in warnings[0].message
        await app.submit("another")  # "always" still holds for the rest of the session
        await wait_for(pilot, lambda: not app.busy and len(cards(app)) == 2)
        assert (workdir / "b.txt").exists() and not asking(app)
    assert (home / "config.toml").read_text() == broken


async def test_deny_with_feedback_reaches_the_model(home, workdir):
    app, provider = scripted_app(home, workdir, [touch("a.txt"), {"text": "ok, I won't"}])
    async with app.run_test() as pilot:
        await start(pilot, app)
        await pilot.press("4")
        await type_text(pilot, "use the tmp folder")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.busy)
        assert not (workdir / "a.txt").exists()
        assert cards(app)[0].status == "denied"
        tool_msg = provider.requests[1].messages[-1]
        assert tool_msg.role == "tool" and "use the tmp folder" in tool_msg.content


async def test_arrows_enter_and_escape(home, workdir):
    script = [touch("a.txt"), {"text": "done"}, touch("b.txt"), {"text": "done"}]
    app, _ = scripted_app(home, workdir, script)
    async with app.run_test() as pilot:
        await start(pilot, app)
        await pilot.press("down", "down", "down", "up", "up", "enter")  # → 2: this session
        await wait_for(pilot, lambda: not app.busy)
        assert app.runtime.agent.session_rules and (workdir / "a.txt").exists()
    app, _ = scripted_app(home, workdir, [touch("c.txt"), {"text": "done"}])
    async with app.run_test() as pilot:
        await start(pilot, app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.busy)
        assert not (workdir / "c.txt").exists() and cards(app)[0].status == "denied"


async def test_keys_in_flight_when_the_dialog_opens_do_not_approve(home, workdir):
    app, _ = scripted_app(home, workdir, [touch("a.txt"), {"text": "done"}], approval_grace_s=60)
    async with app.run_test() as pilot:
        await start(pilot, app)
        await pilot.press("1", "y", "enter", "down", "4", "escape")
        assert asking(app) and not (workdir / "a.txt").exists()
        app.screen.grace_s = 0  # the grace period is over
        await pilot.press("1")
        await wait_for(pilot, lambda: not app.busy)
        assert (workdir / "a.txt").exists()
