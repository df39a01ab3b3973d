"""Run limits (--max-turns, --max-tokens, --max-price, --time-limit), checked before each
model call; the time limit also bounds the run as a whole (see Agent.run). The Budget keeps
both totals: the current run's (against the limits) and the agent's life (the session's,
across runs and resumes: what the footer and the session metadata show)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from vibe.config import ModelConfig
from vibe.errors import LimitReached
from vibe.messages import Usage


@dataclass(frozen=True)
class Limits:
    """Budgets of one run (one user turn); None means unlimited."""

    max_turns: int | None = None
    max_tokens: int | None = None
    max_price: float | None = None
    time_limit: float | None = None


def cost_of(usage: Usage, model: ModelConfig) -> float:
    """USD for `usage` at the model's prices (per million tokens)."""
    return (
        usage.prompt_tokens * model.input_price + usage.completion_tokens * model.output_price
    ) / 1_000_000


# The least room an answer gets when the context is nearly full (below it compaction is due).
MIN_ANSWER_TOKENS = 1024


def answer_cap(model: ModelConfig, context_tokens: int) -> int:
    """The request's max_tokens: the model's max_output_tokens, or less when the context window
    (max_context_length, where known) has less room left than that."""
    cap = model.max_output_tokens
    if model.max_context_length:
        room = model.max_context_length - context_tokens
        cap = min(cap, max(MIN_ANSWER_TOKENS, room))
    return cap


class Budget:
    """What one run has spent so far, against its Limits, and what the agent spent in its
    whole life (`life_usage`, `life_cost_usd`, starting from a resumed session's totals)."""

    def __init__(
        self, limits: Limits, life_usage: Usage | None = None, life_cost_usd: float = 0.0
    ) -> None:
        self.limits = limits
        self.life_usage = life_usage or Usage()
        self.life_cost_usd = life_cost_usd
        self.start()

    def start(self) -> None:
        self.started = time.monotonic()
        self.turns = 0
        self.usage = Usage()
        self.cost_usd = 0.0

    def add(self, usage: Usage, cost_usd: float) -> None:
        """A model call of this run: one turn, counted in the run's and the life totals."""
        self.turns += 1
        self.spend(usage, cost_usd)

    def spend(self, usage: Usage, cost_usd: float) -> None:
        """Tokens and money that are not a turn (a compaction's summary call)."""
        self.usage = self.usage + usage
        self.cost_usd += cost_usd
        self.add_life(usage, cost_usd)

    def add_life(self, usage: Usage, cost_usd: float) -> None:
        """Only the life totals (a subagent's spending, already counted in this run)."""
        self.life_usage = self.life_usage + usage
        self.life_cost_usd += cost_usd

    def time_left(self) -> float | None:
        if self.limits.time_limit is None:
            return None
        return max(0.0, self.limits.time_limit - (time.monotonic() - self.started))

    def check(self) -> None:
        """Raise LimitReached if another model call would exceed a budget."""
        lim = self.limits
        if lim.max_turns is not None and self.turns >= lim.max_turns:
            raise LimitReached(f"turn limit reached ({lim.max_turns} model calls)")
        self.check_spending()
        left = self.time_left()
        if left is not None and left <= 0:
            raise LimitReached(f"time limit reached ({self.limits.time_limit:g} s)")

    def check_spending(self) -> None:
        """Raise LimitReached if the tokens or the money spent reached their limit."""
        lim = self.limits
        if lim.max_tokens is not None and self.usage.total_tokens >= lim.max_tokens:
            raise LimitReached(
                f"token limit reached ({self.usage.total_tokens} of {lim.max_tokens} tokens)"
            )
        if lim.max_price is not None and self.cost_usd >= lim.max_price:
            raise LimitReached(
                f"price limit reached (${self.cost_usd:.4f} of ${lim.max_price:.4f})"
            )
