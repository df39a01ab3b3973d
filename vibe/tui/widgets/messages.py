"""Chat entries: user message, streamed markdown answer, folded reasoning, notices, shell output.
Each entry can describe how to rebuild itself (`rebuild`) so the log may unmount it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.markdown import Markdown as RichMarkdown
from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, Static

THROTTLE_S = 0.05  # at most 20 repaints a second for text that grows token by token


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
        self.text = text
        self.live = live
        self._pending: list[str] = []
        self._stream = None
        self._flush_timer = None

    def compose(self) -> ComposeResult:
        if self.live:
            yield Markdown(self.text)
        else:
            yield Static(RichMarkdown(self.text), classes="assistant-final")

    def write(self, fragment: str) -> None:
        self.text += fragment
        self._pending.append(fragment)
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(THROTTLE_S, self._flush)

    async def _flush(self) -> None:
        self._flush_timer = None
        if not self._pending:
            return
        chunk, self._pending = "".join(self._pending), []
        if self._stream is None:
            self._stream = Markdown.get_stream(self.query_one(Markdown))
        await self._stream.write(chunk)

    def at_segment_end(self) -> bool:
        """Long enough, at a paragraph break, outside a code fence: a good place to split."""
        return (
            len(self.text) > self.SEGMENT_CHARS
            and self.text.endswith("\n\n")
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
            await self.mount(Static(RichMarkdown(self.text), classes="assistant-final"))

    def rebuild(self) -> Callable[[], Widget]:
        return partial(AssistantText, self.text)


class ThrottledStatic(Static):
    """A Static fed by appends, repainted at most every THROTTLE_S."""

    def __init__(self, text: str = "", **kwargs) -> None:
        super().__init__(Text(text), **kwargs)
        self.text = text
        self._dirty = False

    def append(self, fragment: str) -> None:
        self.text += fragment
        if not self._dirty:
            self._dirty = True
            self.set_timer(THROTTLE_S, self._flush)

    def _flush(self) -> None:
        self._dirty = False
        self.update(Text(self.text))

    def flush(self) -> None:
        if self._dirty:
            self._flush()


class ThoughtBlock(Collapsible):
    """The model's reasoning, folded by default."""

    def __init__(self, text: str = "") -> None:
        self.body = ThrottledStatic(text, classes="thought-text")
        super().__init__(self.body, title="Thought", collapsed=True, classes="thought")

    def append(self, fragment: str) -> None:
        self.body.append(fragment)

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
