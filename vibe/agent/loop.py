"""The agent loop: run → step → query → execute, as a stream of typed events.

Public API (the TUI and the headless runner code against exactly this):

    agent = Agent(provider, tools, approver, settings, session)
    async for event in agent.run(prompt):   # one user turn; ends with exactly one TurnFinished
        ...
    agent.interrupt()             # from any callback on the loop's thread: cancels the turn, kills
                                  # tools, records cancelled results; TurnFinished(interrupted, 130)
    agent.set_model(model, provider)   # switch model (mode switch); the history is kept
    agent.set_policy(policy)           # switch permissions (mode switch)
    agent.messages     list[Message], the history incl. the system prompt (read-only for UIs)
    agent.usage        Usage summed over the agent's life; agent.cost_usd (USD, same span)
    agent.context_tokens   context size: the last call's prompt + completion tokens plus an
                       estimate of the messages added since (vibe.agent.tokens.ContextMeter)
    agent.threshold    model.compact_threshold(); agent.num_turns: model calls so far
    await agent.compact(focus)   # compact now (TUI /compact); returns the Compacted event
    agent.session_rules    (tool, pattern) pairs allowed "for this session" (approval choice)

Several tool calls of one model turn run concurrently, except that calls touching the same path
keep the model's order where one of them writes, and a bash (or unknown) call runs after every
earlier call and before every later one (vibe.agent.footprint); approvals are asked one at a
time (vibe.agent.calls). Every tool call gets exactly one result, cancelled ones included: each
is saved to the session as it finishes (a kill loses none), and the history holds them in call
order.
Tool output is redacted (settings.secrets) before the model, the events or the session see it.
A final answer cut off at the output token limit ends the run as a limit (exit 3); an empty or
reasoning-only answer, or a reply without choices, completes with `TurnFinished.warnings`. Limits are checked before
each model call; `_before_query` compacts the context when it reaches the threshold, and an
API "context too long" error compacts once and retries once (vibe.agent.compaction).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tools._text import clean_stale_temps
from tools.base import Tool, tool_schema
from tools.permissions import PermissionPolicy
from vibe.agent import calls as call_runner
from vibe.agent import continuation
from vibe.agent.approval import Approver
from vibe.agent.budget import Budget, Limits, answer_cap, cost_of
from vibe.agent.compaction import Compactor, retry_after_compaction
from vibe.agent.finish import TRUNCATED_CALLS, judge_answer
from vibe.agent.footprint import unfinished_writes
from vibe.agent.history import repair
from vibe.agent.tokens import ContextMeter, estimate_text_tokens
from vibe.agent.window import fit_cap, parse_overflow
from vibe.config import ModelConfig
from vibe.errors import ContextTooLongError, LimitReached, VibeError
from vibe.events import (
    AssistantMessage,
    Compacted,
    ErrorEvent,
    Event,
    ReasoningDelta,
    TextDelta,
    TurnFinished,
    UsageUpdated,
)
from vibe.hooks import points as hook_points
from vibe.messages import Image, Message, ToolCall, Usage
from vibe.providers.base import (
    ChatRequest,
    FinishChunk,
    Provider,
    ReasoningChunk,
    TextChunk,
    ToolCallChunk,
    UsageChunk,
)
from vibe.session import Session

log = logging.getLogger(__name__)


@dataclass
class AgentSettings:
    """How the agent runs: model, permissions, where, limits, the system prompt, output caps."""

    model: ModelConfig
    policy: PermissionPolicy
    cwd: Path
    limits: Limits = field(default_factory=Limits)
    system_prompt: str = ""
    max_tool_output_bytes: int = 30_000
    # Called with (tool_name, pattern) when the user picks "always" (see vibe.agent.policy).
    on_always: Callable[[str, str], None] | None = None
    # Keys redacted from tool output before the model, the event stream and the session see it.
    secrets: list[str] = field(default_factory=list)
    hooks: Any = None  # vibe.hooks.Hooks: pre_tool / post_tool / post_agent commands
    # (tool, raw arguments, status, text) → text: adds a subfolder's AGENTS.md once
    # (vibe.agent.nested_rules.NestedRules.annotate); None in an untrusted folder.
    annotate: Callable[[str, str, str, str], str] | None = None
    # Awaited before a turn's first model call (vibe.mcp: wait for servers still starting,
    # then offer their tools through set_tools).
    before_turn: Callable[[], Awaitable[None]] | None = None
    # (tool, arguments) right before a permitted tool runs (vibe.rewind keeps pre-images).
    before_run: Callable[[str, dict[str, Any]], None] | None = None
    # tools.base.FileAccess: read_file/write_file/edit go through the editor (vibe.acp); None: disk.
    files: Any = None


class Agent:
    def __init__(
        self,
        provider: Provider,
        tools: Mapping[str, Tool],
        approver: Approver,
        settings: AgentSettings,
        session: Session,
    ) -> None:
        self.provider, self.tools, self.approver = provider, dict(tools), approver
        self.settings, self.session = settings, session
        self.messages: list[Message] = [Message("system", settings.system_prompt)]
        # A resumed session's model-facing history starts at its last compaction.
        saved_history = [m for m in session.messages if m.role != "system"]
        self.messages += repair(continuation.model_view(saved_history))
        # A run killed mid-write leaves a temp file beside the target: remove it now.
        for target in unfinished_writes(saved_history, self.tools, settings.cwd):
            try:
                clean_stale_temps(target)
            except OSError as exc:
                log.warning("could not clean temp files beside %s: %s", target, exc)
        saved = session.meta.get("usage") or {}
        life = Usage(saved.get("prompt_tokens", 0), saved.get("completion_tokens", 0))
        # The run's and the life totals (vibe.agent.budget); usage and cost_usd read the latter.
        self._budget = Budget(settings.limits, life, float(session.meta.get("cost_usd", 0.0)))
        self.threshold = settings.model.compact_threshold()
        self.num_turns = 0
        self.session_rules: list[tuple[str, str]] = []  # (tool, pattern) allowed this session
        self._schemas = [tool_schema(t) for t in self.tools.values()]
        self._meter = ContextMeter(fixed=estimate_text_tokens(json.dumps(self._schemas)))
        self._just_compacted = False  # no second compaction before a model call
        self.context_tokens = self._meter.tokens(self.messages)
        self._emit: Callable[[Event], None] = lambda event: None
        self._task: asyncio.Task[None] | None = None
        self._approval_lock = asyncio.Lock()
        self._answer = ""  # the last assistant text of the current run
        self._finish = ""  # the finish reason of the last model call
        self._window: int | None = None  # the server's context window, once an error told it
        self._window_gap = 0  # tokens the server counted beyond our estimate, at that error
        self._warnings: list[str] = []  # of the current run
        self._attachments: list[Image] = []  # @image attachments for the next prompt

    # ---- public controls -------------------------------------------------------------------

    @property
    def usage(self) -> Usage:
        """Tokens over the agent's life (the session's, resumes included): the budget's."""
        return self._budget.life_usage

    @property
    def cost_usd(self) -> float:
        return self._budget.life_cost_usd

    @property
    def running(self) -> bool:
        """A turn is in progress (its provider may be streaming)."""
        return self._task is not None and not self._task.done()

    def interrupt(self) -> None:
        if self.running:
            assert self._task is not None
            self._task.cancel()

    def set_model(self, model: ModelConfig, provider: Provider) -> None:
        self.settings.model, self.provider = model, provider
        self.threshold = model.compact_threshold()

    def attach(self, images: list[Image]) -> None:
        """Images (@image mentions) to send with the next prompt (vibe.images)."""
        self._attachments = list(images)

    def set_policy(self, policy: PermissionPolicy) -> None:
        self.settings.policy = policy

    def set_tools(self, tools: Mapping[str, Tool]) -> None:
        """Replace the tools the model sees (mode switch); the next request lists only these."""
        self.tools = dict(tools)
        self._schemas = [tool_schema(t) for t in self.tools.values()]
        self._meter.fixed = estimate_text_tokens(json.dumps(self._schemas))
        self._meter.reset()  # the last usage report counted the old schemas
        self.context_tokens = self._meter.tokens(self.messages)

    def set_system_prompt(self, prompt: str) -> None:
        """Replace the system prompt (mode switch); the history after it is kept."""
        self.settings.system_prompt = prompt
        self.messages[0] = Message("system", prompt)
        self._meter.reset()  # the last usage report counted the old prompt
        self.context_tokens = self._meter.tokens(self.messages)

    # ---- run → step → query → execute ------------------------------------------------------

    async def run(self, prompt: str) -> AsyncIterator[Event]:
        """One user turn as events; the last one is always exactly one TurnFinished."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._emit = queue.put_nowait
        self._task = asyncio.create_task(self._turn(prompt))
        try:
            while True:
                event = await queue.get()
                yield event
                if isinstance(event, TurnFinished):
                    return
        finally:
            task, self._task = self._task, None
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _turn(self, prompt: str) -> None:
        """Every way a run ends — answer, limit, API failure, interrupt, bug — becomes one
        TurnFinished, emitted last."""
        budget = self._budget
        budget.start()
        self._answer = ""
        self._warnings = []
        status, code, error = "completed", 0, None
        try:
            async with asyncio.timeout(budget.time_left()) as deadline:
                images, self._attachments = self._attachments, []
                self._append(Message("user", prompt, images=images))
                if self.settings.before_turn is not None:
                    await self.settings.before_turn()
                retries = 0
                while True:
                    budget.check()
                    await self._before_query()
                    reply = await retry_after_compaction(self._query, self._auto_compact)
                    if self._finish == "length" and reply.tool_calls:  # cut-off calls never run
                        raise LimitReached(TRUNCATED_CALLS)
                    if not reply.tool_calls:
                        truncated, warnings = judge_answer(reply, self._finish)
                        self._warnings += warnings
                        if truncated:
                            raise LimitReached(truncated)
                        if self.settings.hooks and await hook_points.after_answer(self, retries):
                            retries += 1  # a post_agent hook sent the agent back to work
                            continue
                        break
                    await call_runner.execute(self, reply.tool_calls)
        except TimeoutError as exc:
            if deadline.expired():
                status, code = "limit", 3
                error = f"time limit reached ({self.settings.limits.time_limit:g} s)"
            else:  # a stray timeout from below is a bug, reported like any other
                log.exception("agent loop failed")
                status, code, error = "error", 1, f"internal error: timeout: {exc}"
        except LimitReached as exc:
            status, code, error = "limit", exc.exit_code, str(exc)
        except VibeError as exc:  # ProviderError (2) and the rest
            status, code, error = "error", exc.exit_code, str(exc)
        except asyncio.CancelledError:
            status, code, error = "interrupted", 130, "interrupted"
        except Exception as exc:  # a bug: report it as one line; the log keeps the traceback
            log.exception("agent loop failed")
            status, code, error = "error", 1, f"internal error: {type(exc).__name__}: {exc}"
        if error and status != "interrupted":
            self._emit(ErrorEvent(error))
        self._save_meta()
        self._emit(
            TurnFinished(
                status=status,
                exit_code=code,
                text=self._answer,
                num_turns=budget.turns,
                usage=budget.usage,
                cost_usd=budget.cost_usd,
                error=error,
                warnings=tuple(self._warnings),
            )
        )

    async def _before_query(self) -> None:
        """Before every model call: compact the context when it reached the threshold."""
        self.context_tokens = self._meter.tokens(self.messages)
        if self.context_tokens >= self.threshold and not self._just_compacted:
            await self._auto_compact()

    async def compact(self, focus: str | None = None) -> Compacted:
        """Summarise the history now and continue from the summary (the TUI's /compact)."""
        return await self._compact(focus)

    async def _auto_compact(self) -> None:
        self._emit(await self._compact(None))
        self._emit(UsageUpdated(self.usage, self.context_tokens, self.threshold, self.cost_usd))

    async def _compact(self, focus: str | None) -> Compacted:
        model = self.settings.model
        compactor = Compactor(self.provider, model, self.settings.system_prompt)
        before = self._meter.tokens(self.messages)
        result = await compactor.compact(self.messages, focus, tokens_before=before)
        # The session log keeps the transcript; the continuation marks where the view restarts.
        self.messages = result.messages
        self.session.append(result.messages[-1])
        self._meter.reset()
        self._just_compacted = True
        self.context_tokens = self._meter.tokens(self.messages)
        # The summary call costs tokens and money but is not a turn.
        self._budget.spend(result.usage, cost_of(result.usage, model))
        return Compacted(before, self.context_tokens, result.summary)

    async def _query(self) -> Message:
        """One model call, streamed out as deltas; returns the assistant message."""
        self.messages = repair(self.messages)
        model = self.settings.model
        counted = self.context_tokens + self._window_gap
        cap = fit_cap(answer_cap(model, self.context_tokens), self._window, counted)
        request = ChatRequest(
            model=model.name,
            messages=list(self.messages),
            tools=self._schemas,
            temperature=model.temperature,
            thinking=model.thinking,
            max_tokens=cap,  # max_output_tokens, within the server's window where learned
        )
        try:
            return await self._stream(request)
        except ContextTooLongError as exc:
            # The answer cap, not the prompt, may be what overflowed a small window: retry
            # once with the room the server says is left (the prompt itself too long: compact).
            overflow = parse_overflow(str(exc))
            self._window = overflow.window or self._window
            if overflow.prompt is not None:  # how far our estimate fell short of its count
                self._window_gap = max(0, overflow.prompt - self.context_tokens)
            room = overflow.answer_room()
            if room is None or room >= cap:
                raise
            return await self._stream(replace(request, max_tokens=room))

    async def _stream(self, request: ChatRequest) -> Message:
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        usage: Usage | None = None
        self._finish = ""
        try:
            async for chunk in self.provider.stream(request):
                if isinstance(chunk, TextChunk):
                    text.append(chunk.text)
                    self._emit(TextDelta(chunk.text))
                elif isinstance(chunk, ReasoningChunk):
                    reasoning.append(chunk.text)
                    self._emit(ReasoningDelta(chunk.text))
                elif isinstance(chunk, ToolCallChunk):
                    calls.append(chunk.call)
                elif isinstance(chunk, UsageChunk):
                    usage = chunk.usage
                elif isinstance(chunk, FinishChunk):
                    self._finish = chunk.reason
        except asyncio.CancelledError:
            if text:  # keep what the user already saw; tool calls never ran, so drop them
                self._answer = "".join(text)
                self._append(Message("assistant", "".join(text), "".join(reasoning) or None))
            raise
        message = Message("assistant", "".join(text), "".join(reasoning) or None, calls)
        self._answer = message.content or self._answer
        self._append(message)
        self._emit(AssistantMessage(message))
        self._account(usage or self._estimate(message))
        return message

    async def _ask(self, call: ToolCall, raw: dict[str, Any], reason: str) -> str | None:
        """Ask the approver about one call (vibe.agent.calls.ask; vibe.hooks asks through it)."""
        return await call_runner.ask(self, call, raw, reason)

    # ---- bookkeeping -----------------------------------------------------------------------

    def _append(self, message: Message) -> None:
        self.messages.append(message)
        self.session.append(message)

    def _account(self, usage: Usage) -> None:
        cost = cost_of(usage, self.settings.model)
        self.num_turns += 1
        self._budget.add(usage, cost)
        self._meter.observe(usage, self.messages)
        self._just_compacted = False
        self.context_tokens = self._meter.tokens(self.messages)
        self._emit(UsageUpdated(self.usage, self.context_tokens, self.threshold, self.cost_usd))

    def _estimate(self, reply: Message) -> Usage:
        """Rough counts (4 characters a token) when the provider reports no usage."""
        prompt = sum(len(m.content) + len(m.reasoning or "") for m in self.messages[:-1])
        return Usage(prompt // 4, (len(reply.content) + len(reply.reasoning or "")) // 4)

    def _save_meta(self) -> None:
        try:
            self.session.sync()
            self.session.save_meta(
                usage=self.usage.to_dict(), cost_usd=self.cost_usd, model=self.settings.model.key
            )
        except OSError as exc:
            log.warning("could not save session metadata: %s", exc)
