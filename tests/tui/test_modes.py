"""Pilot tests of modes and models: Shift+Tab cycling (incl. the model-card mode), /model."""

from __future__ import annotations

import re

from tests.fakes.configs import MODEL_CARD as MODEL_CARD_EXAMPLE
from vibe.tui.screens.picker import PickerScreen
from vibe.tui.widgets.tool_card import ToolCard

from .conftest import CONFIG, scripted_app, type_text, wait_for

MODEL_CARD = MODEL_CARD_EXAMPLE.replace("http://<your-host-url>:8000/v1", "http://127.0.0.1:9/v1")


def footer(app) -> str:
    return str(app.footer_bar.render())


async def test_shift_tab_cycles_all_modes_and_the_model_card_mode_switches_model(home, workdir):
    body = CONFIG.format(url="http://127.0.0.1:9/v1").replace('active_model = "fake"\n', "")
    (home / "config.toml").write_text(
        MODEL_CARD + body.replace("[[providers]]", "\n[[providers]]", 1)
    )
    (home / "agents").mkdir()
    (home / "agents" / "reviewer.toml").write_text(
        'display_name = "Reviewer"\nsafety = "safe"\nactive_model = "other"\n'
    )
    app, provider = scripted_app(home, workdir, [{"text": "one"}, {"text": "two"}], model="fake")
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("hello")
        await wait_for(pilot, lambda: not app.busy and provider.requests)
        assert provider.requests[0].model == "fake-model"
        # Like `vibe run`, the TUI starts in the config's own mode; --model still wins.
        assert app.runtime.mode.name == "mistral-medium-3-5-local-vllm"
        seen = []
        for _ in range(6):
            await pilot.press("shift+tab")
            await wait_for(pilot, lambda: app.runtime.mode.name not in [s[0] for s in seen])
            seen.append((app.runtime.mode.name, app.runtime.model.key))
            assert app.runtime.mode.display_name in footer(app)
            assert app.runtime.model.key in footer(app)
        assert seen == [
            ("default", "fake"),
            ("plan", "fake"),
            ("accept-edits", "fake"),
            ("auto-approve", "fake"),
            ("reviewer", "other"),
            ("mistral-medium-3-5-local-vllm", "mistral-medium-3.5"),
        ]
        assert "168.0k tokens" in footer(app)  # the model card's threshold
        await app.submit("again")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 2)
        request = provider.requests[1]
        assert request.model == "mistralai/Mistral-Medium-3.5-128B" and request.thinking == "high"
        assert [m.content for m in request.messages[1:]] == ["hello", "one", "again"]


async def test_plan_mode_denies_writes_without_asking(home, workdir):
    write = {"tool_calls": [{"name": "write_file", "arguments": {"path": "x.txt", "content": "x"}}]}
    app, _ = scripted_app(home, workdir, [write, {"text": "ok"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await pilot.press("shift+tab")
        await wait_for(pilot, lambda: app.runtime.mode.name == "plan")
        await app.submit("write it")
        await wait_for(pilot, lambda: not app.busy and len(app.runtime.agent.messages) >= 4)
        card = next(w for w in app.chat.entries if isinstance(w, ToolCard))
        assert card.status == "denied" and not (workdir / "x.txt").exists()


async def test_model_picker_switches_model_and_keeps_history(home, workdir):
    app, provider = scripted_app(home, workdir, [{"text": "one"}, {"text": "two"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("hello")
        await wait_for(pilot, lambda: not app.busy and provider.requests)
        await type_text(pilot, "/model")
        await pilot.press("escape", "enter")  # close the completion menu, then run /model
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        keys = [key for key, _ in app.screen.items]
        steps = keys.index("other") - keys.index("fake")
        await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")
        await wait_for(pilot, lambda: app.runtime.model.key == "other")
        assert "other" in footer(app)
        await app.submit("again")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 2)
        assert provider.requests[1].model == "other-model"
        assert [m.content for m in provider.requests[1].messages[1:]] == ["hello", "one", "again"]


def tool_names(request) -> list[str]:
    return [t["function"]["name"] for t in request.tools]


async def test_mode_switch_applies_the_modes_tools_and_system_prompt(home, workdir):
    (home / "agents").mkdir()
    (home / "agents" / "reader.toml").write_text(
        'display_name = "Reader"\nenabled_tools = ["read_file"]\n'
        'system_prompt = "You only read files."\n'
    )
    (home / "agents" / "nobash.toml").write_text('disabled_tools = ["bash"]\n')
    script = [{"text": "one"}, {"text": "two"}, {"text": "three"}, {"text": "four"}]
    app, provider = scripted_app(home, workdir, script)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("hello")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 1)
        first = provider.requests[0]
        assert {"bash", "read_file", "edit"} <= set(tool_names(first))
        assert "You only read files." not in first.messages[0].content
        # Shift+Tab cycles to the next mode in order; /mode picks one by name.
        await type_text(pilot, "/mode reader")
        await pilot.press("escape", "enter")
        await wait_for(pilot, lambda: app.runtime.mode.name == "reader")
        await app.submit("again")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 2)
        second = provider.requests[1]
        assert tool_names(second) == ["read_file"]
        system = second.messages[0]
        assert system.role == "system" and system.content.startswith("You only read files.")
        assert f"Working directory: {workdir}" in system.content  # the environment stays
        assert [m.content for m in second.messages[1:]] == ["hello", "one", "again"]
        await pilot.press("shift+tab")  # reader is the last mode: back to default
        await wait_for(pilot, lambda: app.runtime.mode.name == "default")
        await app.submit("third")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 3)
        third = provider.requests[2]
        assert tool_names(third) == tool_names(first)
        assert "You only read files." not in third.messages[0].content
        await type_text(pilot, "/mode nobash")
        await pilot.press("escape", "enter")
        await wait_for(pilot, lambda: app.runtime.mode.name == "nobash")
        await app.submit("fourth")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 4)
        fourth = tool_names(provider.requests[3])
        assert "bash" not in fourth and set(fourth) == set(tool_names(first)) - {"bash"}
        listed = re.search(r"Available tools: ([^.]*)\.", provider.requests[3].messages[0].content)
        assert listed and listed.group(1).split(", ") == fourth  # the prompt names the same tools
