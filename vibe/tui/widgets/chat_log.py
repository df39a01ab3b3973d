"""The scrolling chat history. Only the most recent entries are mounted as widgets; older
ones are kept as rebuild functions and mounted a page at a time when the user scrolls up."""

from __future__ import annotations

from collections.abc import Callable

from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

Factory = Callable[[], Widget]

PAGE = 40  # entries mounted per page when scrolling up
MAX_MOUNTED = 240  # past this, the oldest mounted entries are unmounted (kept as factories)


class ChatLog(VerticalScroll):
    """Append-only log of chat entries, anchored to the bottom while the user does not scroll."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._older: list[Factory] = []  # unmounted entries, oldest first
        self._more = Static("", classes="older-marker")
        self._loading = False

    def on_mount(self) -> None:
        self.mount(self._more)
        self._more.display = False
        self.anchor()
        self.watch(self, "scroll_y", self._on_scroll, init=False)

    @property
    def entries(self) -> list[Widget]:
        return [w for w in self.children if w is not self._more]

    @property
    def hidden_count(self) -> int:
        return len(self._older)

    async def add(self, widget: Widget) -> Widget:
        await self.mount(widget)
        if len(self.children) > MAX_MOUNTED + PAGE:
            await self._unmount_oldest(PAGE)
        return widget

    async def load(self, factories: list[Factory]) -> None:
        """Replace the log with these entries; only the last PAGE are built now."""
        await self.clear()
        self._older = list(factories[:-PAGE]) if len(factories) > PAGE else []
        await self.mount_all([f() for f in factories[-PAGE:]])
        self._update_marker()
        self.anchor()

    async def clear(self) -> None:
        self._older = []
        await self.remove_children([w for w in self.children if w is not self._more])
        self._update_marker()

    async def load_older(self) -> int:
        """Mount the previous page above the first entry, keeping the view where it was."""
        if not self._older or self._loading:
            return 0
        self._loading = True
        try:
            page, self._older = self._older[-PAGE:], self._older[:-PAGE]
            widgets = [f() for f in page]
            before, y = self.virtual_size.height, self.scroll_y
            await self.mount_all(widgets, after=self._more)
            self._update_marker()

            def keep_view() -> None:
                grown = self.virtual_size.height - before
                self.scroll_to(y=y + grown, animate=False, immediate=True)

            self.call_after_refresh(keep_view)
            return len(widgets)
        finally:
            self._loading = False

    async def _unmount_oldest(self, count: int) -> None:
        victims = self.entries[:count]
        self._older.extend(w.rebuild() for w in victims if hasattr(w, "rebuild"))
        await self.remove_children(victims)
        self._update_marker()

    def _update_marker(self) -> None:
        n = len(self._older)
        self._more.display = n > 0
        self._more.update(f"▲ {n} earlier entries (scroll up to load)")

    def _on_scroll(self, _old: float, new: float) -> None:
        if new <= 1 and self._older and not self._loading:
            self.run_worker(self.load_older(), exclusive=True, group="chat-older")
