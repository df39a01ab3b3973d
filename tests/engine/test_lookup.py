"""Prompt lookup (`engine.lookup`): the n-gram index proposes what followed the text's last n
tokens the most recent time, stays right as the text grows, and starts over when it changes."""

from __future__ import annotations

import random

import pytest

from engine.lookup import NgramLookup


def brute_force(text: list[int], indexed: list[int], n: int) -> int | None:
    """The token after the latest occurrence in `indexed` of text's last n tokens."""
    if len(text) < n:
        return None
    pat = text[-n:]
    for s in range(len(indexed) - n - 1, -1, -1):
        if indexed[s : s + n] == pat:
            return indexed[s + n]
    return None


def test_proposes_the_continuation_of_the_most_recent_occurrence():
    look = NgramLookup(2)
    ids = [5, 6, 7, 1, 5, 6, 9, 4, 5, 6]
    look.sync(ids)
    assert look.propose(ids) == 9  # [5, 6] was last followed by 9, not 7
    assert look.propose([*ids, 9]) == 4  # a drafted token extends the text being matched
    assert look.propose([*ids, 8]) is None  # [6, 8] never appeared
    assert look.propose([5]) is None  # shorter than n


def test_the_final_ngram_does_not_match_itself():
    look = NgramLookup(3)
    look.sync([1, 2, 3])
    assert look.propose([1, 2, 3]) is None


@pytest.mark.parametrize("in_place", [False, True], ids=["new-lists", "one-growing-list"])
@pytest.mark.parametrize("n", [1, 3])
def test_growing_and_changed_texts_match_a_fresh_index(n, in_place):
    rng = random.Random(n)
    look = NgramLookup(n)
    ids: list[int] = []
    for step in range(300):
        grow = [rng.randrange(6) for _ in range(rng.randrange(1, 4))]
        if step % 50 == 49:  # the conversation changes: an edited history, not an extension
            ids = [*ids[: rng.randrange(len(ids))], rng.randrange(6)]
        elif in_place:  # as the decoder does: one list appended to (the O(new tokens) path)
            ids.extend(grow)
        else:
            ids = ids + grow
        look.sync(ids)
        assert look.ids == ids
        for extra in ([], [rng.randrange(6)], [rng.randrange(6), rng.randrange(6)]):
            assert look.propose(ids + extra) == brute_force(ids + extra, ids, n)


def test_rejects_an_empty_ngram():
    with pytest.raises(ValueError, match="n-gram"):
        NgramLookup(0)
