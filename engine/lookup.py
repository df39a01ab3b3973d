"""Prompt lookup: propose the token that followed the last n tokens of the text the previous
time they appeared in it (Saxena 2023's "prompt lookup decoding"; vLLM's n-gram drafter).

Code answers repeat what is already in the context (identifiers, signatures, the file being
edited), and a small EAGLE head misses many of those copies: the target is certain, the head
has to rediscover the copy from one layer. `EagleDrafter` drafts the looked-up token instead of
its own whenever there is one; verification keeps the output exact either way.
"""

from __future__ import annotations

from collections.abc import Sequence

# 3 and 4 measured alike on SmolLM2's code answers; 2 copies too eagerly, 6 too rarely.
DEFAULT_NGRAM = 3


class NgramLookup:
    """An index of every n-gram of a token sequence to where it was last followed by a token,
    kept in step with a growing sequence (a sequence that does not extend it starts over)."""

    def __init__(self, n: int = DEFAULT_NGRAM) -> None:
        if n < 1:
            raise ValueError(f"the lookup n-gram length must be >= 1, got {n}")
        self.n = n
        self.ids: list[int] = []
        self._next: dict[tuple[int, ...], int] = {}  # n-gram -> index of the token after it
        self._source: Sequence[int] | None = None  # the object indexed last time

    def sync(self, ids: Sequence[int]) -> None:
        """Index `ids`, reusing the work done for the sequence indexed before when it extends.

        The same list object as last time is trusted to have only grown (the decoder appends to
        one list per generation), so a decode round costs O(new tokens), not O(context); any
        other sequence is compared in full."""
        m = len(self.ids)
        grown = ids is self._source and len(ids) >= m
        if not grown and (len(ids) < m or list(ids[:m]) != self.ids):
            self.ids, self._next, m = [], {}, 0
        self._source = ids
        self.ids.extend(ids[m:])
        n = self.n
        # n-grams that now have a following token: those starting at m - n .. len - n - 1.
        for s in range(max(0, m - n), len(self.ids) - n):
            self._next[tuple(self.ids[s : s + n])] = s + n

    def propose(self, text: Sequence[int]) -> int | None:
        """The token after the most recent indexed occurrence of text's last n tokens (`text`
        is the indexed sequence plus any drafted tokens), or None when they never appeared."""
        if len(text) < self.n:
            return None
        at = self._next.get(tuple(text[-self.n :]))
        return None if at is None else self.ids[at]
