"""A child's Budget: its own turn limit, while every token and cent it spends also counts in
the parent's totals and limits at once (--max-price holds across children)."""

from __future__ import annotations

from collections.abc import Callable

from vibe.agent.budget import Budget, Limits
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
        self.parent.check_spending()
