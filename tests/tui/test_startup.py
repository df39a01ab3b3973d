"""Pilot tests of startup: onboarding (key saved 0600, demo model, keyless skip), folder trust,
and a resumed 10,000-message session that opens with only its end mounted."""

from __future__ import annotations

import json
import stat
import time
import tomllib

from vibe.messages import Message
from vibe.providers import factory
from vibe.session import Session
from vibe.tui.screens.confirm import ConfirmScreen
from vibe.tui.screens.onboarding import OnboardingScreen
from vibe.tui.widgets.chat_log import PAGE
from vibe.tui.widgets.messages import AssistantText, UserMessage

from .conftest import scripted_app, texts, type_text, wait_for


async def test_missing_key_is_asked_and_saved_with_mode_0600(home, workdir):
    (home / "config.toml").unlink()  # built-in Mistral provider, no key anywhere
    app, _ = scripted_app(home, workdir, [{"text": "hi"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, OnboardingScreen))
        await type_text(pilot, "bad key")
        await pilot.press("enter")
        assert isinstance(app.screen, OnboardingScreen)  # a key with spaces is refused
        await pilot.press(*["backspace"] * 7)
        await type_text(pilot, "sk-test123")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.runtime is not None)
        assert app.runtime.model.key == "devstral-medium"
    env = home / ".env"
    assert env.read_text() == "MISTRAL_API_KEY=sk-test123\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


async def test_onboarding_offers_the_offline_demo(home, workdir, monkeypatch):
    (home / "config.toml").unlink()
    monkeypatch.setattr(factory, "demo_installed", lambda: True)
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, OnboardingScreen))
        await pilot.pause()  # laid out: a click before that misses the button
        await pilot.click("#demo")
        await wait_for(pilot, lambda: app.runtime is not None)
        assert app.runtime.model.key == "smollm2"
    assert not (home / ".env").exists()


async def test_no_demo_button_without_the_engine(home, workdir, monkeypatch):
    (home / "config.toml").unlink()
    monkeypatch.setattr(factory, "demo_installed", lambda: False)
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, OnboardingScreen))
        assert not app.screen.query("#demo")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_value == 1


async def test_keyless_provider_skips_onboarding(home, workdir):
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        assert not isinstance(app.screen, OnboardingScreen)


async def test_trust_prompt_is_asked_once_and_remembered(home, workdir):
    (workdir / "AGENTS.md").write_text("Always answer in haiku.\n")
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.runtime is not None)
        assert "Always answer in haiku." in app.runtime.agent.messages[0].content
    assert str(workdir.resolve()) in (home / "trusted_folders.toml").read_text()
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        assert not isinstance(app.screen, ConfirmScreen)


async def test_untrusted_folder_instructions_are_ignored(home, workdir):
    (workdir / "AGENTS.md").write_text("Always answer in haiku.\n")
    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.runtime is not None)
        assert "haiku" not in app.runtime.agent.messages[0].content
    # "No" is remembered (tests/tui/test_trust.py): the folder is not trusted, nor asked again.
    saved = tomllib.loads((home / "trusted_folders.toml").read_text())
    assert saved["untrusted"] == [str(workdir.resolve())] and saved["trusted"] == []


def big_session(home, workdir, n: int) -> Session:
    session = Session.create(home, workdir, model="fake")
    with session.log_file.open("w") as fh:
        for i in range(n // 2):
            fh.write(json.dumps(Message("user", f"question {i}").to_dict()) + "\n")
            fh.write(json.dumps(Message("assistant", f"answer **{i}**").to_dict()) + "\n")
    return Session.load(session.path)


async def test_resumed_long_session_mounts_only_the_end_and_loads_on_scroll(home, workdir):
    session = big_session(home, workdir, 10_000)
    app, _ = scripted_app(home, workdir, [], session=session)
    started = time.monotonic()
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: texts(app, AssistantText), timeout=30)
        opened = time.monotonic() - started
        assert len(app.chat.entries) == PAGE and app.chat.hidden_count == 10_000 - PAGE
        assert texts(app, AssistantText)[-1] == "answer **4999**"
        assert opened < 20  # mounting all 10,000 entries would take minutes
        app.chat.release_anchor()  # what a user scroll does
        app.chat.scroll_home(animate=False)
        await wait_for(pilot, lambda: app.chat.hidden_count <= 10_000 - 2 * PAGE, timeout=30)
        hidden = app.chat.hidden_count
        assert texts(app, UserMessage)[0] == f"question {hidden // 2}"
        assert len(app.chat.entries) == 10_000 - hidden
