"""The TUI's Approver: each request opens the approval dialog and waits for its Decision."""

from __future__ import annotations

import asyncio

from textual.app import App

from vibe.agent.approval import ApprovalRequest, Decision
from vibe.tui.screens.approval import GRACE_S, ApprovalScreen


class TuiApprover:
    def __init__(self, app: App, grace_s: float = GRACE_S) -> None:
        self.app, self.grace_s = app, grace_s

    async def decide(self, request: ApprovalRequest) -> Decision:
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()

        def done(decision: Decision | None) -> None:
            if not future.done():
                future.set_result(decision or Decision("deny"))

        screen = ApprovalScreen(request, self.grace_s)
        self.app.push_screen(screen, done)
        try:
            return await future
        except asyncio.CancelledError:
            # Interrupted while asking: close the dialog so it does not linger.
            if screen.is_attached and self.app.screen is screen:
                screen.dismiss(Decision("deny"))
            raise
