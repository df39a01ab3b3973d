"""Fuzzy matching for the `/` and `@` menus and the pickers: the query's characters must appear
in order (case-insensitive). Better matches first: a prefix, then a match at the start of a
word or path part, then a substring, then a scattered match (tighter and earlier first)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
_BOUNDARY = "/_-. "


def score(query: str, text: str) -> tuple[int, int, int] | None:
    """A sort key (lower is better), or None when `text` does not match `query`."""
    if not query:
        return (0, 0, len(text))
    q, t = query.lower(), text.lower()
    if t.startswith(q):
        return (0, 0, len(t))
    at = t.find(q)
    if at >= 0:
        boundary = t[at - 1] in _BOUNDARY
        return (1 if boundary else 2, at, len(t))
    match = _pattern(q).search(t)
    if match is None:
        return None
    return (3, match.end() - match.start(), len(t))


_CACHE: dict[str, re.Pattern[str]] = {}


def _pattern(query: str) -> re.Pattern[str]:
    pattern = _CACHE.get(query)
    if pattern is None:
        pattern = re.compile(".*?".join(re.escape(c) for c in query), re.DOTALL)
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[query] = pattern
    return pattern


def rank(
    query: str, items: Iterable[T], key: Callable[[T], str], limit: int | None = None
) -> list[T]:
    """The items matching `query`, best first; ties (same kind, same place) keep their order."""
    scored = []
    for n, item in enumerate(items):
        s = score(query, key(item))
        if s is not None:
            scored.append((s, n, item))
    scored.sort(key=lambda x: (x[0][:2], x[1]))
    out = [item for _, _, item in scored]
    return out if limit is None else out[:limit]


def rank_paths(query: str, files: list[str], limit: int = 12) -> list[str]:
    """Files for `@query`: the file name matching counts before the rest of its path."""

    def key(path: str) -> tuple[int, int, int] | None:
        name = path.rsplit("/", 1)[-1]
        whole = score(query, path)
        if whole is None:
            return None
        if "/" not in query:
            by_name = score(query, name)
            if by_name is not None and by_name[0] < 3 and by_name[0] < whole[0] + 1:
                return (by_name[0], by_name[1], len(path))
        return (whole[0] + (1 if whole[0] else 0), whole[1], len(path))

    scored = []
    for n, path in enumerate(files):
        k = key(path)
        if k is not None:
            scored.append((k, n, path))
    scored.sort()
    return [p for _, _, p in scored[:limit]]
