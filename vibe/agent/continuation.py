"""The continuation message that replaces a compacted history: the summary, the task list, the
files modified, the user's instructions and most recent messages verbatim. Pure functions only.

Carried parts are wrapped in `<vibe:...>` tags so a later compaction can read them back from a
previous continuation message instead of losing them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vibe.agent.clip import clip_middle
from vibe.agent.tokens import TextCounter, estimate_text_tokens
from vibe.messages import Message

HEADER = (
    "[vibe] Context compacted. This session continues an earlier conversation that no longer "
    "fits in the context window; what matters from it is below."
)
FOOTER = (
    "Continue the work from where it stopped. The user's instructions above still apply. "
    "Do not redo finished work and do not ask the user to repeat anything."
)
RECENT_USER_BUDGET = 20_000
INSTRUCTION_BUDGET = 4_000
WRITE_TOOLS = ("write_file", "edit")
TODO_TOOL = "todo"

_USER_RE = re.compile(r"<vibe:user_message>\n(.*?)\n</vibe:user_message>", re.S)
_INSTRUCTION_RE = re.compile(r"<vibe:instruction>(.*?)</vibe:instruction>", re.S)
_TODOS_RE = re.compile(r"<vibe:todos>\n(.*?)\n</vibe:todos>", re.S)
_FILES_RE = re.compile(r"<vibe:modified_files>\n(.*?)\n</vibe:modified_files>", re.S)
_SUMMARY_END = "</vibe:summary>"
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")
# Sentences that read like an instruction, a constraint or a preference.
_DIRECTIVE_RE = re.compile(
    r"\b(never|don'?t|do not|doesn'?t|must(?:n'?t)?|always|only|avoid|make sure|ensure|"
    r"should(?:n'?t)?|shall|prefer|instead|without|no longer|keep|leave|stop|not allowed|"
    r"forbid\w*|need to|have to|remember|important|careful)\b|\bno [a-z]",
    re.I,
)
_NOT_RUN = ("Error", "Denied", "Tool call cancelled", "No changes")
_STATUS_MARK = {"completed": "x", "done": "x", "in_progress": "~", "cancelled": "-"}


@dataclass(frozen=True)
class Carried:
    """What a continuation carries besides the summary."""

    recent: list[str]  # the newest user messages, verbatim, oldest first
    instructions: list[str]  # directive sentences from older user messages, verbatim
    todos: list[str]  # rendered task-list lines
    modified_files: list[str]


def is_continuation(message: Message) -> bool:
    """Whether `message` is a continuation message made by an earlier compaction."""
    return message.role == "user" and message.content.startswith(HEADER)


def model_view(messages: Sequence[Message]) -> list[Message]:
    """What the model sees of a saved session: the leading system message(s), then everything
    from the last continuation message on (the log keeps the full transcript)."""
    start = next(
        (i for i in range(len(messages) - 1, -1, -1) if is_continuation(messages[i])), None
    )
    if start is None:
        return list(messages)
    system = [m for m in messages[:start] if m.role == "system"][:1]
    return [*system, *messages[start:]]


def gather(
    messages: Sequence[Message],
    *,
    budget: int = RECENT_USER_BUDGET,
    instruction_budget: int = INSTRUCTION_BUDGET,
    count: TextCounter = estimate_text_tokens,
) -> Carried:
    """Collect what the continuation of `messages` must carry verbatim."""
    users: list[str] = []
    instructions: list[str] = []
    todos: list[str] = []
    files: dict[str, None] = {}
    results = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
    for message in messages:
        if is_continuation(message):
            tail = _after_summary(message.content)
            users += _USER_RE.findall(tail)
            # The loop merges a new prompt into a preceding continuation (consecutive users).
            after = tail.partition(FOOTER)[2].strip()
            users += [after] if after else []
            instructions += _INSTRUCTION_RE.findall(tail)
            found = _TODOS_RE.search(tail)
            todos = found.group(1).splitlines() if found else todos
            listed = _FILES_RE.search(tail)
            for line in listed.group(1).splitlines() if listed else ():
                files[line.removeprefix("- ")] = None
        elif message.role == "user":
            users.append(message.content)
        for call in message.tool_calls:
            args = _json_object(call.arguments)
            if _failed(results.get(call.id)):
                continue
            if call.name in WRITE_TOOLS and isinstance(args.get("path"), str):
                files[args["path"]] = None
            elif call.name == TODO_TOOL and isinstance(args.get("todos"), list):
                todos = render_todos(args["todos"])
    recent, older = split_recent(users, budget, count)
    instructions = _dedupe(instructions + extract_instructions(older))
    instructions = _fit_oldest_first(instructions, instruction_budget, count)
    return Carried(recent, instructions, todos, list(files))


def split_recent(
    texts: Sequence[str], budget: int, count: TextCounter = estimate_text_tokens
) -> tuple[list[str], list[str]]:
    """Split `texts` into (the newest that fit in `budget` tokens, the older rest). The newest
    is always kept, cut to head and tail when it alone exceeds the budget."""
    texts = [t for t in texts if t.strip()]
    if not texts:
        return [], []
    kept: list[str] = []
    used = 0
    for index in range(len(texts) - 1, -1, -1):
        size = count(texts[index])
        if used + size > budget:
            if not kept:
                kept.append(_cut(texts[index], budget))
                index -= 1
            return kept[::-1], list(texts[: index + 1])
        kept.append(texts[index])
        used += size
    return kept[::-1], []


def extract_instructions(texts: Sequence[str]) -> list[str]:
    """Sentences of `texts` that read like instructions or constraints, verbatim, in order."""
    found: list[str] = []
    for text in texts:
        for sentence in _SENTENCE_RE.split(text):
            sentence = sentence.strip()
            if sentence and _DIRECTIVE_RE.search(sentence):
                found.append(sentence)
    return found


def render_todos(items: Sequence[Any]) -> list[str]:
    """Task-list lines (`- [x] ...`) from the `todos` argument of a todo tool call."""
    lines = []
    for item in items:
        if isinstance(item, str):
            text, status = item, "pending"
        elif isinstance(item, dict):
            text = next(
                (
                    str(item[k])
                    for k in ("content", "text", "title", "task", "description")
                    if k in item
                ),
                json.dumps(item),
            )
            status = str(item.get("status", "pending")).lower()
        else:
            continue
        lines.append(f"- [{_STATUS_MARK.get(status, ' ')}] {text}")
    return lines


def render(summary: str, carried: Carried) -> str:
    """The text of the continuation message."""
    parts = [HEADER, "", "## Summary of the session so far", "<vibe:summary>"]
    parts += [summary.strip(), _SUMMARY_END, ""]
    if carried.todos:
        parts += ["## Current task list", "<vibe:todos>", *carried.todos, "</vibe:todos>", ""]
    if carried.modified_files:
        files = [f"- {path}" for path in carried.modified_files]
        parts += ["## Files modified in this session", "<vibe:modified_files>", *files]
        parts += ["</vibe:modified_files>", ""]
    if carried.instructions:
        parts.append("## Earlier instructions from the user (verbatim)")
        parts += [f"<vibe:instruction>{s}</vibe:instruction>" for s in carried.instructions]
        parts.append("")
    if carried.recent:
        parts.append("## The user's most recent messages (verbatim, oldest first)")
        for text in carried.recent:
            parts += ["<vibe:user_message>", text, "</vibe:user_message>"]
        parts.append("")
    parts.append(FOOTER)
    return "\n".join(parts)


def build_context(system: Sequence[Message], summary: str, carried: Carried) -> list[Message]:
    """The new model-facing history: the system message(s) and one continuation message."""
    return [*system, Message(role="user", content=render(summary, carried))]


def _failed(result: str | None) -> bool:
    # How the loop reports calls that changed nothing: errors, denials, cancellations.
    return result is not None and result.startswith(_NOT_RUN)


def _after_summary(content: str) -> str:
    end = content.find(_SUMMARY_END)
    return content[end + len(_SUMMARY_END) :] if end >= 0 else content


def _json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _cut(text: str, budget: int) -> str:
    keep = int(budget * 3.5)  # chars: about 3.5 per token on code and prose
    return clip_middle(text, keep, head=2 / 3)


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _fit_oldest_first(items: Sequence[str], budget: int, count: TextCounter) -> list[str]:
    kept, used = [], 0
    for item in items:
        size = count(item)
        if used + size <= budget:
            kept.append(item)
            used += size
    return kept
