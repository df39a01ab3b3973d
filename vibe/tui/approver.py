"""The TUI's Approver: each request opens the approval dialog (with a preview of what the call
will do, computed in a thread) and waits for its Decision."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from textual.app import App

from vibe.agent.approval import ApprovalRequest, Decision
from vibe.tui.preview import preview
from vibe.tui.screens.approval import GRACE_S, ApprovalScreen


class TuiApprover:
    def __init__(self, app: App, grace_s: float = GRACE_S) -> None:
        self.app, self.grace_s = app, grace_s
        self.on_ask: Callable[[str], None] | None = None  # a terminal notification

    @property
    def cwd(self) -> Path:
        return getattr(self.app, "cwd", None) or Path.cwd()

    async def decide(self, request: ApprovalRequest) -> Decision:
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()

        def done(decision: Decision | None) -> None:
            if not future.done():
                future.set_result(decision or Decision("deny"))

        shown = await asyncio.to_thread(preview, request.tool_name, request.arguments, self.cwd)
        screen = ApprovalScreen(request, self.grace_s, shown)
        self.app.push_screen(screen, done)
        if self.on_ask is not None:
            self.on_ask(f"vibe: {request.tool_name} waits for your approval")
        try:
            return await future
        except asyncio.CancelledError:
            # Interrupted while asking: close the dialog so it does not linger.
            if screen.is_attached and self.app.screen is screen:
                screen.dismiss(Decision("deny"))
            raise
