"""A child's Budget: its own turn limit, while every token and cent it spends also counts in
the parent's totals and limits at once (--max-price holds across children)."""

from __future__ import annotations

from collections.abc import Callable

from vibe.agent.budget import Budget, Limits
from vibe.errors import LimitReached
from vibe.messages import Usage


class ChildBudget(Budget):
    def __init__(
        self, limits: Limits, parent: Budget, on_spend: Callable[[Usage, float], None]
    ) -> None:
        self.parent, self.on_spend = parent, on_spend
        super().__init__(limits)

    def add(self, usage: Usage, cost_usd: float) -> None:
        super().add(usage, cost_usd)
        self.parent.usage = self.parent.usage + usage
        self.parent.cost_usd += cost_usd
        self.on_spend(usage, cost_usd)

    def check(self) -> None:
        super().check()
        # The parent's token and price limits (its turn limit counts its own model calls).
        lim, spent = self.parent.limits, self.parent
        if lim.max_tokens is not None and spent.usage.total_tokens >= lim.max_tokens:
            raise LimitReached(
                f"token limit reached ({spent.usage.total_tokens} of {lim.max_tokens} tokens)"
            )
        if lim.max_price is not None and spent.cost_usd >= lim.max_price:
            raise LimitReached(
                f"price limit reached (${spent.cost_usd:.4f} of ${lim.max_price:.4f})"
            )
