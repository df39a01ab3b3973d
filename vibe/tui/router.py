"""Agent events → widget updates, in one `match`. Holds only display state of the current turn."""

from __future__ import annotations

from vibe.events import (
    AssistantMessage,
    Compacted,
    ErrorEvent,
    Event,
    HookEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    ToolOutput,
    TurnFinished,
    UsageUpdated,
)
from vibe.tui.widgets.chat_log import ChatLog
from vibe.tui.widgets.footer import StatusFooter
from vibe.tui.widgets.messages import AssistantText, Notice, ThoughtBlock
from vibe.tui.widgets.tool_card import ToolCard, summarize_args


class EventRouter:
    def __init__(self, log: ChatLog, footer: StatusFooter) -> None:
        self.log, self.footer = log, footer
        self.text: AssistantText | None = None
        self.thought: ThoughtBlock | None = None
        self.cards: dict[str, ToolCard] = {}
        self.last_answer = ""
        self._errors: set[str] = set()  # shown this turn, so TurnFinished does not repeat them

    async def route(self, event: Event) -> None:
        match event:
            case TextDelta(text=text):
                if self.text is None:
                    self.text = await self.log.add(AssistantText(live=True))
                self.text.write(text)
                if self.text.at_segment_end():
                    await self.end_segment()
            case ReasoningDelta(text=text):
                if self.thought is None:
                    self.thought = await self.log.add(ThoughtBlock())
                self.thought.append(text)
            case AssistantMessage(message=message):
                if message.content:
                    self.last_answer = message.content
                await self.end_segment()
            case ToolCallStarted(call_id=cid, name=name, arguments=args, raw_arguments=raw):
                await self.end_segment()
                card = ToolCard(cid, name, summarize_args(name, args, raw))
                self.cards[cid] = await self.log.add(card)
            case ToolOutput(call_id=cid, text=text):
                if cid in self.cards:
                    self.cards[cid].append_output(text)
            case ToolCallFinished(call_id=cid, name=name) as done:
                card = self.cards.pop(cid, None)
                if card is None:
                    card = await self.log.add(ToolCard(cid, name, ""))
                card.finish(done.status, done.result, done.diff, done.data, done.duration_ms)
            case Compacted(tokens_before=before, tokens_after=after):
                await self.log.add(
                    Notice(f"Context compacted: {before:,} → {after:,} tokens", "compaction")
                )
            case UsageUpdated(context_tokens=used, threshold=threshold, cost_usd=cost):
                self.footer.set_state(used=used, threshold=threshold, cost=cost)
            case ErrorEvent(message=message):
                await self.end_segment()
                self._errors.add(message)
                await self.log.add(Notice(message, "error"))
            case HookEvent(decision="deny" | "warning") as hook:
                kind = "error" if hook.decision == "deny" else "info"
                await self.log.add(Notice(f"hook {hook.name} ({hook.type}): {hook.message}", kind))
            case TurnFinished() as fin:
                await self.finish_turn(fin)

    async def end_segment(self) -> None:
        """Close the streaming text and reasoning so the next fragment starts new widgets."""
        if self.text is not None:
            await self.text.finish()
            self.text = None
        if self.thought is not None:
            self.thought.body.flush()
            self.thought = None

    async def finish_turn(self, fin: TurnFinished) -> None:
        await self.end_segment()
        for card in self.cards.values():
            card.finish("cancelled", "", None, None, 0)
        self.cards.clear()
        if fin.text:
            self.last_answer = fin.text
        self.footer.set_state(cost=fin.cost_usd)
        if fin.status == "interrupted":
            await self.log.add(Notice("Interrupted.", "info"))
        elif fin.status == "limit":
            await self.log.add(Notice(fin.error or "A limit was reached.", "error"))
        elif fin.status == "error" and (fin.error or "") not in self._errors:
            await self.log.add(Notice(fin.error or "The turn failed.", "error"))
        self._errors.clear()
