"""Auto-compaction: when the context reaches the model's threshold, summarise the history with
the active model (no tools) and replace the model-facing history with the system prompt and one
continuation message (see continuation.py). The session log keeps the full transcript.

    Compactor(provider, model, system_prompt=None).compact(messages, focus=None) -> CompactionResult
    retry_after_compaction(call, compact): one compaction and one retry on ContextTooLongError
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TypeVar

from vibe.agent import continuation
from vibe.agent.clip import clip_middle
from vibe.agent.tokens import TextCounter, estimate_text_tokens, estimate_tokens
from vibe.config.schema import ModelConfig
from vibe.errors import CompactionError, ContextTooLongError
from vibe.events import Compacted
from vibe.messages import Message, Usage
from vibe.providers.base import ChatRequest, Provider, collect

SUMMARY_MAX_TOKENS = 8_000
MAX_ATTEMPTS = 2
TOOL_OUTPUT_CAP = 20_000  # chars of one tool output kept in the transcript
TOOL_ARGS_CAP = 2_000  # chars of one tool call's arguments (write_file bodies) kept
SYSTEM = "You write precise hand-over summaries of coding-agent sessions. You never call tools."
DROPPED = "[output dropped to fit the summary request]"

T = TypeVar("T")


@dataclass(frozen=True)
class CompactionResult:
    """The outcome of one compaction: the new model-facing history and what it cost."""

    messages: list[Message]
    summary: str
    tokens_before: int
    tokens_after: int
    usage: Usage = field(default_factory=Usage)
    dropped_tool_outputs: int = 0

    def event(self) -> Compacted:
        return Compacted(self.tokens_before, self.tokens_after, self.summary)


def summary_prompt() -> str:
    """The structured summary instructions (vibe/prompts/compaction.md)."""
    return resources.files("vibe.prompts").joinpath("compaction.md").read_text(encoding="utf-8")


class Compactor:
    """Summarises and rebuilds a history for one model. Stateless between calls.

    `system_prompt`: the system prompt of the new context; None keeps the history's leading
    system message(s). `recent_budget`: tokens of recent user messages kept verbatim (default
    20k, less for small thresholds). `count`: the text token counter (the estimate by default).
    """

    def __init__(
        self,
        provider: Provider,
        model: ModelConfig,
        system_prompt: str | None = None,
        *,
        recent_budget: int | None = None,
        count: TextCounter = estimate_text_tokens,
    ) -> None:
        self.provider = provider
        self.model = model
        self.system_prompt = system_prompt
        # Small windows get smaller carry-overs so the new context stays well under threshold.
        threshold = model.compact_threshold()
        self.recent_budget = recent_budget or min(continuation.RECENT_USER_BUDGET, threshold // 4)
        self.instruction_budget = min(continuation.INSTRUCTION_BUDGET, threshold // 16)
        self.count = count
        self._prompt = summary_prompt()

    @property
    def threshold(self) -> int:
        return self.model.compact_threshold()

    def needs_compaction(self, context_tokens: int) -> bool:
        """Whether a context of `context_tokens` must be compacted before the next call."""
        return context_tokens >= self.threshold

    def summary_request(
        self, messages: Sequence[Message], focus: str | None = None, drop: int = 0
    ) -> ChatRequest:
        """The summary request for `messages`, with the `drop` oldest tool outputs left out."""
        transcript = render_transcript(messages, drop)
        ask = self._prompt
        if focus and focus.strip():
            ask += f"\n\nThe user asked the summary to focus on: {focus.strip()}"
        return ChatRequest(
            model=self.model.name,
            messages=[
                Message(role="system", content=SYSTEM),
                Message(role="user", content=f"<transcript>\n{transcript}\n</transcript>\n\n{ask}"),
            ],
            tools=[],
            temperature=self.model.temperature,
            thinking="off",
            max_tokens=SUMMARY_MAX_TOKENS,
        )

    async def summarize(
        self, messages: Sequence[Message], focus: str | None = None
    ) -> tuple[str, Usage, int]:
        """(summary, usage, tool outputs dropped). Too long: drop the oldest tool outputs and
        retry; a second failure raises CompactionError instead of looping."""
        drop = self._initial_drop(messages)
        outputs = sum(1 for m in messages if m.role == "tool")
        usage = Usage()
        failures: list[str] = []
        while len(failures) < MAX_ATTEMPTS:
            request = self.summary_request(messages, focus, drop)
            try:
                completion = await collect(self.provider.stream(request))
            except ContextTooLongError as exc:
                left_out = f"{drop} of {outputs} tool outputs left out"
                failures.append(f"the summary request was too long ({left_out}): {exc.detail}")
                drop = self._drop_for_retry(messages, drop)
                continue
            usage = usage + completion.usage
            summary = completion.message.content.strip()
            if summary:
                return summary, usage, drop
            failures.append("the model returned an empty summary")
        raise self._error("; ".join(failures))

    async def compact(
        self,
        messages: Sequence[Message],
        focus: str | None = None,
        tokens_before: int | None = None,
    ) -> CompactionResult:
        """Summarise `messages` and return the new model-facing history (system + continuation).

        `tokens_before`: the accounted context size (default: the estimate of `messages`).
        """
        if all(m.role == "system" for m in messages):
            raise CompactionError("nothing to compact yet: the conversation is empty")
        before = tokens_before
        if before is None:
            before = estimate_tokens(messages, self.count)
        summary, usage, dropped = await self.summarize(messages, focus)
        new = self.rebuild(messages, summary)
        return CompactionResult(
            new, summary, before, estimate_tokens(new, self.count), usage, dropped
        )

    def rebuild(self, messages: Sequence[Message], summary: str) -> list[Message]:
        """The compacted history for `messages` given its `summary` (no model call)."""
        carried = continuation.gather(
            messages,
            budget=self.recent_budget,
            instruction_budget=self.instruction_budget,
            count=self.count,
        )
        if self.system_prompt is not None:
            system = [Message(role="system", content=self.system_prompt)]
        else:
            system = _leading_system(messages)
        return continuation.build_context(system, summary, carried)

    def _initial_drop(self, messages: Sequence[Message]) -> int:
        # With a known window, leave out old tool outputs up front rather than fail once.
        window = self.model.max_context_length
        if not window:
            return 0
        room = window - SUMMARY_MAX_TOKENS - self.count(self._prompt) - 512
        return _drops_to_fit(messages, room, self.count)

    def _drop_for_retry(self, messages: Sequence[Message], drop: int) -> int:
        # Halve the transcript: a near miss would only fail again and trip the breaker.
        target = self.count(render_transcript(messages, drop)) // 2
        return max(drop + 1, _drops_to_fit(messages, target, self.count))

    def _error(self, why: str) -> CompactionError:
        return CompactionError(
            f"compaction failed: {why}; stopping instead of retrying "
            "(start a new session, or /compact with a narrower focus)",
            provider=getattr(self.provider, "name", ""),
            model=self.model.name,
        )


async def retry_after_compaction(
    call: Callable[[], Awaitable[T]], compact: Callable[[], Awaitable[object]]
) -> T:
    """Run `call`; if the API says the context is too long, `compact` once and retry once.
    A second ContextTooLongError propagates (no loop)."""
    try:
        return await call()
    except ContextTooLongError:
        await compact()
    return await call()


def render_transcript(messages: Sequence[Message], drop: int = 0) -> str:
    """The history as plain text for the summariser; the `drop` oldest tool outputs are left
    out and long outputs and tool arguments are cut. Reasoning is left out (ephemeral)."""
    blocks: list[str] = []
    dropped = 0
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            if dropped < drop:
                dropped += 1
                body = DROPPED
            else:
                body = _cap(message.content, TOOL_OUTPUT_CAP)
            blocks.append(f"### tool result ({message.name or 'tool'})\n{body}")
            continue
        parts = [message.content.strip()] if message.content.strip() else []
        parts += [
            f"[tool call {c.name}({_cap(c.arguments, TOOL_ARGS_CAP)})]" for c in message.tool_calls
        ]
        if parts:
            blocks.append(f"### {message.role}\n" + "\n".join(parts))
    return "\n\n".join(blocks)


def _cap(text: str, limit: int) -> str:
    return clip_middle(text, limit, head=0.75)


def _leading_system(messages: Sequence[Message]) -> list[Message]:
    out = []
    for message in messages:
        if message.role != "system":
            break
        out.append(message)
    return out


def _drops_to_fit(messages: Sequence[Message], room: int, count: TextCounter) -> int:
    """How many of the oldest tool outputs to leave out so the transcript fits in `room`."""
    excess = count(render_transcript(messages)) - room
    drop = 0
    for message in messages:
        if excess <= 0:
            break
        if message.role == "tool":
            drop += 1
            excess -= count(_cap(message.content, TOOL_OUTPUT_CAP)) - count(DROPPED)
    return drop
