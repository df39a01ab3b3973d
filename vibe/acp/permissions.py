"""session/request_permission: vibe's approval choices as ACP permission options (allow once,
allow for this session, always allow (saved to config.toml), reject), and the two tools that
talk to the user (the plan review of exit_plan_mode, ask_user_question) as the same kind of
request. A session/cancel while a request is open ends it as a rejection."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acp.schema import PermissionOption, ToolCallUpdate

from vibe.agent.approval import ApprovalRequest, Decision

if TYPE_CHECKING:
    from vibe.acp.session import AcpSession

log = logging.getLogger(__name__)

ALLOW_ONCE, ALLOW_SESSION, ALLOW_ALWAYS, REJECT = (
    "allow_once",
    "allow_session",
    "allow_always",
    "reject_once",
)


def options(pattern: str) -> list[PermissionOption]:
    shown = f" `{pattern}`" if pattern else ""
    return [
        PermissionOption(option_id=ALLOW_ONCE, name="Allow once", kind="allow_once"),
        PermissionOption(
            option_id=ALLOW_SESSION, name=f"Allow{shown} for this session", kind="allow_always"
        ),
        PermissionOption(
            option_id=ALLOW_ALWAYS,
            name=f"Always allow{shown} (saved to config.toml)",
            kind="allow_always",
        ),
        PermissionOption(option_id=REJECT, name="Reject", kind="reject_once"),
    ]


async def ask(
    session: AcpSession, tool_call: ToolCallUpdate, opts: list[PermissionOption]
) -> str | None:
    """The option the user picked, or None (cancelled by the client)."""
    response = await session.conn.request_permission(
        session_id=session.id, tool_call=tool_call, options=opts
    )
    outcome = response.outcome
    return outcome.option_id if getattr(outcome, "outcome", "") == "selected" else None


class AcpApprover:
    """vibe.agent.approval.Approver for one ACP session."""

    def __init__(self) -> None:
        self.session: AcpSession | None = None  # bound once the session exists

    async def decide(self, request: ApprovalRequest) -> Decision:
        session = self.session
        if session is None:
            return Decision("deny", feedback="the editor session is not ready")
        view = session.updates.request(request.call_id, request.tool_name, request.arguments)
        if request.reason:
            view.title = f"{view.title} — {request.reason}"
        choice = await ask(session, view, options(request.session_pattern))
        pattern = request.session_pattern
        if choice == ALLOW_ONCE:
            decision = Decision("once")
        elif choice == ALLOW_SESSION:
            decision = Decision("session", pattern=pattern)
        elif choice == ALLOW_ALWAYS:
            decision = Decision("always", pattern=pattern)
        else:
            why = "the user rejected it" if choice == REJECT else "the request was cancelled"
            return Decision("deny", feedback=f"In the editor, {why}.")
        if request.call_id in session.updates.calls:
            from acp import update_tool_call

            await session.send(update_tool_call(request.call_id, status="in_progress"))
        return decision


class AcpInteraction:
    """vibe.agent.interaction.Interaction over permission requests."""

    def __init__(self) -> None:
        self.session: AcpSession | None = None

    async def ask_questions(self, questions: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        from acp import text_block, tool_content

        session = self.session
        if session is None:
            return None
        answers: list[dict[str, Any]] = []
        for n, question in enumerate(questions):
            opts = [
                PermissionOption(option_id=str(i), name=str(o.get("label", i)), kind="allow_once")
                for i, o in enumerate(question.get("options") or [])
            ]
            opts.append(PermissionOption(option_id="skip", name="Skip", kind="reject_once"))
            detail = "\n".join(
                f"- **{o.get('label', '')}**: {o.get('description', '')}"
                for o in question.get("options") or []
            )
            view = ToolCallUpdate(
                tool_call_id=f"question-{id(questions)}-{n}",
                title=str(question.get("question", "Question")),
                kind="other",
                status="pending",
                content=[tool_content(text_block(detail))] if detail else None,
            )
            choice = await ask(session, view, opts)
            if choice is None or choice == "skip":
                return None
            label = str((question.get("options") or [])[int(choice)].get("label", ""))
            answers.append(
                {"question": question.get("question", ""), "answer": label, "is_other": False}
            )
        return answers

    async def review_plan(self, plan: str, path: Path) -> str | None:
        from acp import text_block, tool_content

        session = self.session
        if session is None:
            return "keep"
        opts = [
            PermissionOption(
                option_id="accept-edits", name="Yes, and accept edits", kind="allow_always"
            ),
            PermissionOption(option_id="default", name="Yes, ask before edits", kind="allow_once"),
            PermissionOption(option_id="keep", name="No, keep planning", kind="reject_once"),
        ]
        view = ToolCallUpdate(
            tool_call_id=f"plan-review-{session.id}",
            title="Ready to code? Review the plan",
            kind="switch_mode",
            status="pending",
            content=[tool_content(text_block(plan))],
        )
        choice = await ask(session, view, opts)
        if choice in (None, "keep") or session.runtime.loaded.mode(choice) is None:
            return "keep"
        await session.switch_mode(choice, notify=True)
        extras = session.runtime.extras
        if extras is not None:  # the tool result tells the model: no second reminder
            extras.reminders.clear()
        return choice
