"""How tool-call decisions flow into the agent: the Approver protocol and its headless policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Choice = Literal["once", "session", "always", "deny"]


@dataclass(frozen=True)
class ApprovalRequest:
    """A tool call that the permission policy says must be asked about."""

    call_id: str
    tool_name: str
    arguments: dict[str, Any]
    reason: str  # why it asks, e.g. "writes outside the working directory"
    session_pattern: str  # suggested pattern for "allow for this session", e.g. "git *"
    agent: str | None = None  # the subagent that asks (a `task` child), None: the main agent


@dataclass(frozen=True)
class Decision:
    """The answer: once / for this session (pattern) / always (saved to config) / deny."""

    choice: Choice
    feedback: str = ""  # told to the model on deny
    pattern: str = ""  # for session/always

    @property
    def allowed(self) -> bool:
        return self.choice != "deny"


class Approver(Protocol):
    """Decides about tool calls that ask. The TUI shows a dialog; headless applies a policy."""

    async def decide(self, request: ApprovalRequest) -> Decision: ...


class HeadlessApprover:
    """Never waits for a human: approve everything with --auto-approve, else deny and say why."""

    def __init__(self, auto_approve: bool = False) -> None:
        self.auto_approve = auto_approve

    async def decide(self, request: ApprovalRequest) -> Decision:
        if self.auto_approve:
            return Decision("once")
        return Decision(
            "deny",
            feedback=(
                f"{request.tool_name} needs approval ({request.reason}) and this is a "
                "non-interactive run; rerun with --auto-approve or allowlist it in config.toml."
            ),
        )
