"""Pilot tests of issue 22 in the TUI: skills in the `/` menu and as commands, plan-mode
reminders, the exit_plan_mode review dialog and the ask_user_question dialog. What the model
received is read back from the scripted provider's requests."""

from __future__ import annotations

from vibe.tui.screens.approval import ApprovalScreen
from vibe.tui.screens.plan_review import PlanReviewScreen
from vibe.tui.screens.question import QuestionScreen
from vibe.tui.widgets.messages import UserMessage

from .conftest import scripted_app, texts, type_text, wait_for

SKILL = """---
name: release-notes
description: Write release notes from the git log.
---
Write release notes for version $ARGUMENTS.
"""


def user_text(request) -> str:
    return [m.content for m in request.messages if m.role == "user"][-1]


def tool_text(request) -> str:
    return [m.content for m in request.messages if m.role == "tool"][-1]


def tool_names(request) -> list[str]:
    return [t["function"]["name"] for t in request.tools]


async def test_slash_menu_lists_skills_and_sends_them(home, workdir):
    (home / "skills" / "release-notes").mkdir(parents=True)
    (home / "skills" / "release-notes" / "SKILL.md").write_text(SKILL)
    app, provider = scripted_app(home, workdir, [{"text": "notes"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await type_text(pilot, "/rel")
        assert app.prompt.menu.display
        assert app.prompt.menu.candidates.items == [
            ("/release-notes", "(skill) Write release notes from the git log.")
        ]
        await pilot.press("tab")
        await type_text(pilot, "v1.2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.busy and provider.requests)
        assert "/release-notes v1.2" in texts(app, UserMessage)
        sent = user_text(provider.requests[0])
        assert "Write release notes for version v1.2." in sent
        assert "- release-notes: Write release notes" in provider.requests[0].messages[0].content


async def test_entering_and_leaving_plan_mode_tell_the_model(home, workdir):
    app, provider = scripted_app(home, workdir, [{"text": "a"}, {"text": "b"}, {"text": "c"}])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await pilot.press("shift+tab")  # default → plan
        await wait_for(pilot, lambda: app.runtime.mode.name == "plan")
        await app.submit("explore")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 1)
        entered = user_text(provider.requests[0])
        plan = app.loaded.home / "plans" / f"{app.runtime.session.id}.md"
        assert entered.startswith("explore") and "Plan mode is on" in entered
        assert str(plan) in entered and "exit_plan_mode" in entered
        assert "exit_plan_mode" in tool_names(provider.requests[0])
        await pilot.press("shift+tab")  # plan → accept-edits
        await wait_for(pilot, lambda: app.runtime.mode.name == "accept-edits")
        await app.submit("go")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 2)
        left = user_text(provider.requests[1])
        assert "Plan mode is off" in left and "Plan mode is on" not in left
        assert "exit_plan_mode" not in tool_names(provider.requests[1])
        await app.submit("more")  # no switch: no reminder
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 3)
        assert user_text(provider.requests[2]) == "more"


async def plan_session(home, workdir, choice: str):
    app, provider = scripted_app(home, workdir, [], mode="plan")
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        plan = app.loaded.home / "plans" / f"{app.runtime.session.id}.md"
        provider.script += [
            {
                "tool_calls": [
                    {
                        "name": "write_file",
                        "arguments": {"path": str(plan), "content": "# Plan\n- step one\n"},
                    }
                ]
            },
            {"tool_calls": [{"name": "exit_plan_mode", "arguments": {}}]},
            {"text": "ok"},
        ]
        await app.submit("plan the work")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanReviewScreen | ApprovalScreen))
        assert isinstance(app.screen, PlanReviewScreen)  # the plan file was written unasked
        assert app.screen.plan == "# Plan\n- step one\n"
        await pilot.pause(0.05)
        await pilot.press(choice)
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 3)
        return app.runtime.mode.name, tool_text(provider.requests[2]), plan


async def test_exit_plan_mode_accept_edits_switches_the_mode(home, workdir):
    mode, told, plan = await plan_session(home, workdir, "1")
    assert mode == "accept-edits"
    assert "approved the plan and switched to the accept-edits mode" in told
    assert plan.read_text() == "# Plan\n- step one\n"


async def test_exit_plan_mode_keep_planning_stays_in_plan_mode(home, workdir):
    mode, told, _ = await plan_session(home, workdir, "3")
    assert mode == "plan" and "keep planning" in told


QUESTIONS = {
    "questions": [
        {
            "question": "Which database?",
            "header": "Database",
            "options": [
                {"label": "PostgreSQL", "description": "Relational"},
                {"label": "SQLite", "description": "A file"},
            ],
        },
        {
            "question": "Which features?",
            "header": "Features",
            "multi_select": True,
            "options": [
                {"label": "Auth", "description": "Login"},
                {"label": "Search", "description": "Full text"},
            ],
        },
    ]
}


async def test_question_dialog_returns_the_answers(home, workdir):
    script = [
        {"tool_calls": [{"name": "ask_user_question", "arguments": QUESTIONS}]},
        {"text": "thanks"},
    ]
    app, provider = scripted_app(home, workdir, script)
    async with app.run_test(size=(120, 50)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("set it up")
        await wait_for(pilot, lambda: isinstance(app.screen, QuestionScreen))
        await pilot.pause(0.05)
        assert "ask_user_question" in tool_names(provider.requests[0])
        await pilot.click("#questions-submit")  # nothing picked: it asks for an answer
        assert "Answer question 1" in str(app.screen.query_one("#questions-error").render())
        await pilot.click("#q0-opt1")
        await pilot.click("#q1-opt0")
        app.screen.query_one("#q1-other-text").focus()
        await type_text(pilot, "export")
        await pilot.click("#questions-submit")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 2)
        told = tool_text(provider.requests[1])
        assert "[Database] Which database?\n   → SQLite" in told
        assert "[Features] Which features?\n   → Auth, export (their own answer)" in told


async def test_question_dialog_dismissed_with_escape(home, workdir):
    script = [
        {"tool_calls": [{"name": "ask_user_question", "arguments": QUESTIONS}]},
        {"text": "ok"},
    ]
    app, provider = scripted_app(home, workdir, script)
    async with app.run_test(size=(120, 50)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None)
        await app.submit("set it up")
        await wait_for(pilot, lambda: isinstance(app.screen, QuestionScreen))
        await pilot.pause(0.05)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.busy and len(provider.requests) == 2)
        assert "dismissed the questions" in tool_text(provider.requests[1])
