"""Chat entries: user message, streamed markdown answer, folded reasoning, notices, shell output.
Each entry can describe how to rebuild itself (`rebuild`) so the log may unmount it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Collapsible, Static

THROTTLE_S = 0.05  # at most 20 repaints a second for text that grows token by token


def final_markdown(text: str) -> Static:
    """A finished answer: one Static with a rich Markdown renderable. markdown-it and pygments
    load here, not at import, so the first frame does not wait for them."""
    from rich.markdown import Markdown as RichMarkdown

    return Static(RichMarkdown(text), classes="assistant-final")


class TextBuffer:
    """Text that grows by appends in O(1): fragments are joined only when the whole is read."""

    def __init__(self, text: str = "") -> None:
        self._parts = [text] if text else []
        self._len = len(text)

    def append(self, fragment: str) -> None:
        self._parts.append(fragment)
        self._len += len(fragment)

    @property
    def value(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def endswith(self, suffix: str) -> bool:
        """Checks the last fragments only (without joining everything)."""
        tail = ""
        for part in reversed(self._parts):
            tail = part + tail
            if len(tail) >= len(suffix):
                break
        return tail.endswith(suffix)

    def __len__(self) -> int:
        return self._len


class UserMessage(Static):
    """What the user typed (`queued` while the agent is still busy)."""

    def __init__(self, text: str, queued: bool = False) -> None:
        super().__init__(Text(text), classes="user-message")
        self.text = text
        self.set_class(queued, "queued")
        if queued:
            self.border_subtitle = "queued"

    def dequeue(self) -> None:
        self.remove_class("queued")
        self.border_subtitle = ""

    def rebuild(self) -> Callable[[], Widget]:
        return partial(UserMessage, self.text)


class AssistantText(Widget):
    """The answer. While streaming it is a Textual Markdown fed through MarkdownStream, in
    batches at most every THROTTLE_S; once finished it becomes one Static holding a rich
    Markdown renderable, so a long history costs one widget per answer, not one per block."""

    DEFAULT_CSS = "AssistantText { height: auto; }"
    SEGMENT_CHARS = 3000  # past this, at a paragraph break, the router starts a new segment

    def __init__(self, text: str = "", live: bool = False) -> None:
        super().__init__(classes="assistant")
        self._text = TextBuffer(text)
        self.live = live
        self._pending: list[str] = []
        self._stream = None
        self._flush_timer = None

    @property
    def text(self) -> str:
        return self._text.value

    def compose(self) -> ComposeResult:
        if self.live:
            from textual.widgets import Markdown

            yield Markdown(self.text)
        else:
            yield final_markdown(self.text)

    def write(self, fragment: str) -> None:
        """O(1) per token: the markdown parse runs once per THROTTLE_S batch."""
        self._text.append(fragment)
        self._pending.append(fragment)
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(THROTTLE_S, self._flush)

    async def _flush(self) -> None:
        self._flush_timer = None
        if not self._pending:
            return
        chunk, self._pending = "".join(self._pending), []
        if self._stream is None:
            from textual.widgets import Markdown

            self._stream = Markdown.get_stream(self.query_one(Markdown))
        await self._stream.write(chunk)

    def at_segment_end(self) -> bool:
        """Long enough, at a paragraph break, outside a code fence: a good place to split.
        Counting fences reads the whole text, so it runs once per paragraph, not per token."""
        return (
            len(self._text) > self.SEGMENT_CHARS
            and self._text.endswith("\n\n")
            and self.text.count("```") % 2 == 0
        )

    async def finish(self) -> None:
        """Stop streaming and swap the live Markdown for the cheap final form."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self._pending = []
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()
        if self.live:
            self.live = False
            await self.remove_children()
            await self.mount(final_markdown(self.text))

    def rebuild(self) -> Callable[[], Widget]:
        return partial(AssistantText, self.text)


class ThrottledStatic(Static):
    """A Static fed by appends (O(1) each), repainted at most every THROTTLE_S, and not at all
    while `paused` (e.g. folded away): then it repaints once when unpaused."""

    def __init__(self, text: str = "", paused: bool = False, **kwargs) -> None:
        super().__init__(Text(text), **kwargs)
        self._text = TextBuffer(text)
        self._dirty = False
        self._timer = None
        self.paused = paused

    @property
    def text(self) -> str:
        return self._text.value

    @text.setter
    def text(self, value: str) -> None:
        self._text = TextBuffer(value)

    @property
    def length(self) -> int:
        """Characters held (not `__len__`: a widget with no text must stay truthy)."""
        return len(self._text)

    def append(self, fragment: str) -> None:
        self._text.append(fragment)
        self._dirty = True
        if self._timer is None and not self.paused:
            self._timer = self.set_timer(THROTTLE_S, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self._dirty and not self.paused:
            self._dirty = False
            self.update(Text(self.text))

    def flush(self) -> None:
        self._flush()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if not paused:
            self._flush()


class ThoughtBlock(Collapsible):
    """The model's reasoning, folded by default; while folded, streaming it repaints nothing."""

    def __init__(self, text: str = "") -> None:
        self.body = ThrottledStatic(text, paused=True, classes="thought-text")
        super().__init__(self.body, title="Thought", collapsed=True, classes="thought")

    def append(self, fragment: str) -> None:
        self.body.append(fragment)

    def on_collapsible_expanded(self, event: Collapsible.Expanded) -> None:
        if event.collapsible is self:
            self.body.set_paused(False)

    def on_collapsible_collapsed(self, event: Collapsible.Collapsed) -> None:
        if event.collapsible is self:
            self.body.set_paused(True)

    def rebuild(self) -> Callable[[], Widget]:
        return partial(ThoughtBlock, self.body.text)


class Notice(Static):
    """A one-block message: kind is info | error | compaction."""

    def __init__(self, text: str, kind: str = "info") -> None:
        super().__init__(Text(text), classes=f"notice notice-{kind}")
        self.text, self.kind = text, kind

    def rebuild(self) -> Callable[[], Widget]:
        return partial(Notice, self.text, self.kind)


class ShellOutput(Widget):
    """`!cmd` and what it printed."""

    DEFAULT_CSS = "ShellOutput { height: auto; }"

    def __init__(self, command: str, output: str = "", exit_code: int | None = 0) -> None:
        super().__init__(classes="shell")
        self.command, self.output, self.exit_code = command, output, exit_code
        self.border_title = f"! {command}"

    def compose(self) -> ComposeResult:
        yield Static(Text(self.output or "(no output)"), classes="shell-output")

    def set_result(self, output: str, exit_code: int | None) -> None:
        self.output, self.exit_code = output, exit_code
        self.query_one(".shell-output", Static).update(Text(output or "(no output)"))
        status = "killed" if exit_code is None else f"exit {exit_code}"
        self.border_subtitle = status
        self.set_class(exit_code != 0, "failed")

    def on_mount(self) -> None:
        if self.output:
            self.set_result(self.output, self.exit_code)

    def rebuild(self) -> Callable[[], Widget]:
        return partial(ShellOutput, self.command, self.output, self.exit_code)
