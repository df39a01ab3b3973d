"""Pilot tests of /rewind and Esc Esc: the conversation goes back to just before the chosen
message (which returns to the input), the files write_file/edit changed since can be restored,
the session log keeps everything and records the rewind, and a resumed session opens rewound."""

from __future__ import annotations

import json

from vibe.session import Session
from vibe.tui.screens.picker import PickerScreen
from vibe.tui.widgets.messages import AssistantText, UserMessage

from .conftest import approval_open, scripted_app, texts, wait_for


def write(path: str, content: str) -> dict:
    return {"tool_calls": [{"name": "write_file", "arguments": {"path": path, "content": content}}]}


def edit(path: str, old: str, new: str) -> dict:
    args = {"path": path, "old_string": old, "new_string": new}
    return {"tool_calls": [{"name": "edit", "arguments": args}]}


async def turn(pilot, app, prompt: str) -> None:
    """Send `prompt`, allow every tool call for the session, wait for the answer."""
    await app.submit(prompt)
    while True:
        await wait_for(pilot, lambda: approval_open(app) or not app.busy)
        if not app.busy:
            return
        dialog = app.screen
        await pilot.press("2")
        await wait_for(pilot, lambda d=dialog: app.screen is not d)


SCRIPT = [
    write("a.txt", "first change\n"),
    {"text": "wrote a"},
    edit("a.txt", "first", "second"),
    write("sub/b.txt", "new file\n"),
    {"text": "edited a, wrote b"},
    {"text": "after the rewind"},
]


async def test_rewind_restores_the_conversation_and_the_files(home, workdir):
    (workdir / "a.txt").write_text("original\n")
    app, provider = scripted_app(home, workdir, SCRIPT)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await turn(pilot, app, "make the first change")
        await turn(pilot, app, "now the second")
        assert (workdir / "a.txt").read_text() == "second change\n"
        assert (workdir / "sub" / "b.txt").is_file()
        session_path = app.runtime.session.path

        await app.submit("/rewind")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        assert "bash" in app.screen.note  # the picker says bash changes are not tracked
        assert [label for _, label in app.screen.items] == [
            "now the second",
            "make the first change",
        ]
        await pilot.press("enter")  # the newest: "now the second"
        await wait_for(pilot, lambda: app.screen.title_text == "Restore the files too?")
        assert "a.txt" in app.screen.note and "b.txt" in app.screen.note
        await pilot.press("enter")  # rewind and restore
        await wait_for(pilot, lambda: app.prompt.text == "now the second")

        # The files are as they were before that message (b.txt did not exist).
        assert (workdir / "a.txt").read_text() == "first change\n"
        assert not (workdir / "sub" / "b.txt").exists()
        # The conversation: only the first exchange, on screen and for the model.
        assert texts(app, UserMessage) == ["make the first change"]
        assert texts(app, AssistantText) == ["wrote a"]
        await pilot.press("enter")  # send the message again, as it came back
        await wait_for(
            pilot, lambda: not app.busy and texts(app, AssistantText)[-1:] == ["after the rewind"]
        )
        sent = [(m.role, m.content) for m in provider.requests[-1].messages[1:]]
        assert [c for r, c in sent if r == "user"] == ["make the first change", "now the second"]
        assert ("assistant", "edited a, wrote b") not in sent

    # The log keeps every message and records the rewind; reading it gives the rewound view.
    lines = [json.loads(x) for x in (session_path / "messages.jsonl").read_text().splitlines()]
    assert sum("rewind" in line for line in lines) == 1
    assert any(line.get("content") == "edited a, wrote b" for line in lines)
    resumed = Session.load(session_path)
    contents = [m.content for m in resumed.messages if m.role in ("user", "assistant")]
    assert "edited a, wrote b" not in contents and contents[-1] == "after the rewind"

    # A resumed session opens at the rewound point.
    app, _ = scripted_app(home, workdir, [], session=resumed)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: texts(app, AssistantText))
        assert texts(app, UserMessage) == ["make the first change", "now the second"]


async def test_escape_twice_rewinds_the_conversation_only(home, workdir):
    app, _ = scripted_app(home, workdir, [write("a.txt", "made\n"), {"text": "done"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await turn(pilot, app, "create a.txt")
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.title_text == "Restore the files too?")
        await pilot.press("down", "enter")  # the conversation only
        await wait_for(pilot, lambda: app.prompt.text == "create a.txt")
        assert (workdir / "a.txt").read_text() == "made\n"  # kept
        assert texts(app, UserMessage) == [] and len(app.runtime.agent.messages) == 1


async def test_rewind_with_nothing_to_rewind_says_so(home, workdir):
    from vibe.tui.widgets.messages import Notice

    app, _ = scripted_app(home, workdir, [])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("/rewind")
        await wait_for(pilot, lambda: any("Nothing to rewind" in t for t in texts(app, Notice)))
        assert not isinstance(app.screen, PickerScreen)
