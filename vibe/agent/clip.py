"""The one head-and-tail clipper: an over-long text keeps its beginning and its end, with a
line in between saying how much was left out (tool results, compaction transcripts, kept
user messages)."""

from __future__ import annotations

from typing import Literal


def clip_middle(
    text: str, limit: int, *, head: float = 0.5, unit: Literal["chars", "bytes"] = "chars"
) -> str:
    """`text` if it fits in `limit` characters (or UTF-8 bytes), else its first `head` share
    and its last `1 - head` share of `limit` around `[... N characters|bytes omitted ...]`."""
    if unit == "bytes":
        data = text.encode("utf-8", errors="replace")
        if len(data) <= limit:
            return text
        first, last = int(limit * head), limit - int(limit * head)
        start = data[:first].decode("utf-8", errors="ignore")
        end = data[len(data) - last :].decode("utf-8", errors="ignore") if last else ""
        return f"{start}\n[... {len(data) - first - last} bytes omitted ...]\n{end}"
    if len(text) <= limit:
        return text
    first, last = int(limit * head), limit - int(limit * head)
    start, end = text[:first], text[len(text) - last :] if last else ""
    return f"{start}\n[... {len(text) - first - last} characters omitted ...]\n{end}"
