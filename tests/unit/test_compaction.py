"""Compaction without sockets: the continuation message, what survives a ~200k-token history,
the summary request, dropping old tool outputs, the circuit breaker, and context accounting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from vibe.agent import continuation
from vibe.agent.compaction import (
    DROPPED,
    CompactionError,
    Compactor,
    retry_after_compaction,
)
from vibe.agent.tokens import (
    ContextMeter,
    estimate_text_tokens,
    estimate_tokens,
    format_context,
    mistral_common_counter,
)
from vibe.config.schema import ModelConfig
from vibe.errors import ContextTooLongError, ProviderError
from vibe.messages import Message, ToolCall, Usage
from vibe.providers.base import ChatRequest, Chunk, TextChunk, UsageChunk

SYSTEM = "You are vibe, a coding agent."
CONSTRAINT = "Never touch file src/legacy_parser.py, it is frozen."
SUMMARY = "## Goal\nFix the parser.\n\n## Next steps\n1. Run the tests."


class FakeModel:
    """A provider at the boundary: plays replies (text) or raises errors, records requests."""

    name = "fake"

    def __init__(self, *turns: str | Exception) -> None:
        self.turns = list(turns)
        self.requests: list[ChatRequest] = []

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        turn = self.turns.pop(0)
        if isinstance(turn, Exception):
            raise turn
        yield TextChunk(turn)
        yield UsageChunk(Usage(1000, 50))

    async def aclose(self) -> None:
        return None


def too_long() -> ContextTooLongError:
    return ContextTooLongError("prompt is too long: 250000 tokens > 200000", status=400)


def model(**kw: object) -> ModelConfig:
    return ModelConfig(name="m", provider="p", **kw)


def call(name: str, args: dict[str, object], call_id: str) -> ToolCall:
    return ToolCall(call_id, name, json.dumps(args))


def tool_turn(name: str, args: dict[str, object], output: str, call_id: str) -> list[Message]:
    return [
        Message("assistant", "", tool_calls=[call(name, args, call_id)]),
        Message("tool", output, tool_call_id=call_id, name=name),
    ]


def small_history() -> list[Message]:
    todos = [
        {"content": "Reproduce the bug", "status": "completed"},
        {"content": "Fix tokenize()", "status": "in_progress"},
        {"content": "Add a regression test", "status": "pending"},
    ]
    return [
        Message("system", SYSTEM),
        Message("user", f"Fix the failing parser test. {CONSTRAINT}"),
        *tool_turn("read_file", {"path": "src/parser.py"}, "1\tdef tokenize(s): ...", "c1"),
        *tool_turn("todo", {"todos": todos[:1]}, "Todos (0/1)", "c2"),
        *tool_turn(
            "edit", {"path": "src/parser.py", "old_string": "a", "new_string": "b"}, "ok", "c3"
        ),
        *tool_turn("write_file", {"path": "tests/test_regress.py", "content": "x"}, "ok", "c4"),
        *tool_turn("edit", {"path": "legacy.py"}, "Denied: edit was not run (ask).", "c6"),
        *tool_turn("write_file", {"path": "gone/"}, "Error: gone is a directory", "c7"),
        *tool_turn("todo", {"todos": todos}, "Todos (1/3)", "c5"),
        Message("assistant", "Edited the parser; now adding a test."),
        Message("user", "Also keep the public API unchanged."),
    ]


def big_history(target_tokens: int = 200_000) -> list[Message]:
    """A long session: the constraint in the first message, then many turns with big tool
    outputs and enough later user messages to push the first one out of the 20k budget."""
    messages = [Message("system", SYSTEM), Message("user", f"Refactor the lexer. {CONSTRAINT}")]
    turn = 0
    while estimate_tokens(messages) < target_tokens:
        turn += 1
        output = "".join(
            f"{i:5}\tline {i} of module_{turn}.py: x = compute({i})\n" for i in range(400)
        )
        messages += tool_turn("read_file", {"path": f"src/module_{turn}.py"}, output, f"r{turn}")
        messages.append(Message("assistant", f"Module {turn} read; it calls compute()."))
        messages.append(
            Message("user", f"Update {turn}: continue with the next module. " + "ok " * 3000)
        )
    messages.append(Message("user", "Latest: please finish module 1 first."))
    return messages


def continuation_text(result_messages: list[Message]) -> str:
    assert [m.role for m in result_messages] == ["system", "user"]
    assert result_messages[0].content == SYSTEM
    text = result_messages[1].content
    assert continuation.is_continuation(result_messages[1])
    return text


async def test_continuation_carries_summary_todos_files_and_user_messages() -> None:
    provider = FakeModel(SUMMARY)
    history = small_history()
    result = await Compactor(provider, model(), SYSTEM).compact(history)

    text = continuation_text(result.messages)
    assert SUMMARY in text
    # The todo list is the last todo call's, not the first's.
    assert "- [x] Reproduce the bug\n- [~] Fix tokenize()\n- [ ] Add a regression test" in text
    assert "<vibe:modified_files>\n- src/parser.py\n- tests/test_regress.py\n</" in text
    assert "read_file" not in text.split("</vibe:summary>")[1]  # read files are not "modified"
    assert f"Fix the failing parser test. {CONSTRAINT}" in text
    assert "Also keep the public API unchanged." in text
    assert result.summary == SUMMARY
    assert result.tokens_before == estimate_tokens(history)
    assert result.tokens_after == estimate_tokens(result.messages) < result.tokens_before
    assert result.usage == Usage(1000, 50)
    assert result.event().tokens_after == result.tokens_after


async def test_summary_request_has_no_tools_and_quotes_the_user() -> None:
    provider = FakeModel(SUMMARY)
    await Compactor(provider, model(temperature=0.7), SYSTEM).compact(
        small_history(), focus="the parser fix"
    )

    [request] = provider.requests
    assert request.tools == []
    assert request.model == "m"
    assert request.thinking == "off"
    assert [m.role for m in request.messages] == ["system", "user"]
    body = request.messages[1].content
    assert CONSTRAINT in body
    assert "Also keep the public API unchanged." in body
    for section in (
        "## Goal",
        "## User instructions and constraints",
        "## Decisions",
        "## Files",
        "## Progress",
        "## Errors seen",
        "## Next steps",
    ):
        assert section in body
    assert "QUOTED VERBATIM" in body
    assert body.rstrip().endswith("focus on: the parser fix")
    assert '[tool call edit({"path": "src/parser.py"' in body


async def test_200k_history_keeps_early_instruction_verbatim_and_recent_within_budget() -> None:
    history = big_history()
    assert 195_000 < estimate_tokens(history) < 215_000
    result = await Compactor(FakeModel(SUMMARY), model(auto_compact_threshold=168_000)).compact(
        history
    )

    text = continuation_text(result.messages)
    # The first message is far outside the recent budget; its constraint survives verbatim.
    assert "Refactor the lexer." not in text.split("</vibe:summary>")[1].split("## The user")[1]
    assert f"<vibe:instruction>{CONSTRAINT}</vibe:instruction>" in text
    carried = continuation.gather(history)
    users = [m.content for m in history if m.role == "user"]
    assert carried.recent == users[-len(carried.recent) :]  # the newest, contiguous, in order
    assert carried.recent[-1] == "Latest: please finish module 1 first."
    recent_tokens = sum(estimate_text_tokens(t) for t in carried.recent)
    assert 15_000 < recent_tokens <= continuation.RECENT_USER_BUDGET
    assert result.tokens_after < 30_000


async def test_too_long_summary_request_drops_oldest_tool_outputs_first() -> None:
    provider = FakeModel(too_long(), SUMMARY)
    history = big_history(60_000)
    result = await Compactor(provider, model()).compact(history)

    first, second = (r.messages[1].content for r in provider.requests)
    outputs = [m.content for m in history if m.role == "tool"]
    assert all(o in first for o in outputs) and DROPPED not in first
    assert outputs[0] not in second and outputs[-1] in second  # oldest gone, newest kept
    assert second.count(DROPPED) == result.dropped_tool_outputs > 0
    assert len(second) <= len(first) * 0.6
    assert CONSTRAINT in second  # user messages are never dropped
    assert result.summary == SUMMARY


async def test_circuit_breaker_after_two_failures() -> None:
    provider = FakeModel(too_long(), too_long(), SUMMARY)
    with pytest.raises(CompactionError, match="compaction failed: the summary request was too"):
        await Compactor(provider, model()).compact(big_history(30_000))
    assert len(provider.requests) == 2  # no third try
    assert CompactionError("x").exit_code == 2

    empty = FakeModel("", "  ")
    with pytest.raises(CompactionError, match="empty summary"):
        await Compactor(empty, model()).compact(small_history())
    assert len(empty.requests) == 2


async def test_other_provider_errors_propagate_unchanged() -> None:
    provider = FakeModel(ProviderError("HTTP 500", status=500))
    with pytest.raises(ProviderError, match="HTTP 500") as info:
        await Compactor(provider, model()).compact(small_history())
    assert not isinstance(info.value, CompactionError)


async def test_known_window_drops_old_outputs_before_the_first_request() -> None:
    provider = FakeModel(SUMMARY)
    history = big_history(60_000)
    result = await Compactor(provider, model(max_context_length=40_000)).compact(history)
    assert len(provider.requests) == 1
    assert result.dropped_tool_outputs > 0
    assert estimate_text_tokens(provider.requests[0].messages[1].content) < 40_000 - 8_000


async def test_second_compaction_carries_the_first_ones_parts_forward() -> None:
    first = await Compactor(FakeModel(SUMMARY), model(), SYSTEM).compact(big_history())
    later = [
        *first.messages,
        *tool_turn(
            "edit", {"path": "src/lexer.py", "old_string": "a", "new_string": "b"}, "ok", "e9"
        ),
        Message("user", "Now run the whole suite."),
    ]
    # The loop merges a prompt into a preceding continuation (consecutive user messages).
    merged = [
        first.messages[0],
        Message("user", first.messages[1].content + "\n\nAnd do not push anything."),
    ]
    second = await Compactor(FakeModel("second summary"), model(), SYSTEM).compact(later)
    text = continuation_text(second.messages)
    assert "second summary" in text and SUMMARY not in text
    assert f"<vibe:instruction>{CONSTRAINT}</vibe:instruction>" in text
    assert "Latest: please finish module 1 first." in text
    assert "Now run the whole suite." in text
    assert "<vibe:modified_files>\n- src/lexer.py\n</vibe:modified_files>" in text
    assert text.count(continuation.HEADER) == 1

    carried = continuation.gather(merged)
    assert carried.recent[-1] == "And do not push anything."


def test_model_view_starts_at_the_last_continuation() -> None:
    cont = Message("user", continuation.render("s", continuation.Carried([], [], [], [])))
    log = [Message("system", SYSTEM), Message("user", "old"), cont, Message("assistant", "hi")]
    assert continuation.model_view(log) == [log[0], cont, log[3]]
    assert continuation.model_view(log[:2]) == log[:2]


def test_split_recent_cuts_a_single_huge_message() -> None:
    huge = "start " + "x" * 200_000 + " end"
    recent, older = continuation.split_recent(["old", huge], budget=1_000)
    assert older == ["old"]
    [cut] = recent
    assert cut.startswith("start ") and cut.endswith(" end") and "characters omitted" in cut
    assert estimate_text_tokens(cut) <= 1_100


def test_compact_thresholds() -> None:
    assert model(auto_compact_threshold=168_000).compact_threshold() == 168_000
    assert model().compact_threshold() == 200_000
    assert model(max_context_length=262_144).compact_threshold() == 214_630
    window = 8_192  # a small window must not compact at nearly nothing
    assert model(max_context_length=window).compact_threshold() == window // 2
    compactor = Compactor(FakeModel(), model(max_context_length=window))
    assert compactor.needs_compaction(4_096) and not compactor.needs_compaction(4_095)
    assert compactor.recent_budget == 1_024


async def test_retry_after_compaction_compacts_once_and_retries_once() -> None:
    calls: list[str] = []

    async def fails_then_works() -> str:
        calls.append("call")
        if len(calls) == 1:
            raise too_long()
        return "answer"

    async def compact() -> None:
        calls.append("compact")

    assert await retry_after_compaction(fails_then_works, compact) == "answer"
    assert calls == ["call", "compact", "call"]

    async def always_too_long() -> str:
        calls.append("call")
        raise too_long()

    calls.clear()
    with pytest.raises(ContextTooLongError):
        await retry_after_compaction(always_too_long, compact)
    assert calls == ["call", "compact", "call"]


def test_context_meter_adds_estimates_to_the_last_report() -> None:
    meter = ContextMeter()
    history = small_history()
    assert meter.tokens(history) == estimate_tokens(history)
    meter.observe(Usage(5_000, 200), history)
    assert meter.tokens(history) == 5_200
    added = Message("tool", "x" * 3_500, tool_call_id="c9", name="bash")
    assert meter.tokens([*history, added]) == 5_200 + estimate_tokens([added])
    # A rewritten history (compaction) no longer matches the report: estimate it all.
    rewritten = [history[0], Message("user", "summary")]
    assert meter.tokens(rewritten) == estimate_tokens(rewritten)
    meter.observe(Usage(), history)  # no usage reported
    assert meter.tokens(history) == estimate_tokens(history)


def test_estimate_is_close_to_the_real_tokenizer() -> None:
    pytest.importorskip("mistral_common")
    from importlib import resources

    path = resources.files("mistral_common") / "data" / "tekken_240911.json"
    count = mistral_common_counter(str(path))
    assert count is not None
    source = (resources.files("vibe.agent") / "compaction.py").read_text(encoding="utf-8")
    numbered = "".join(f"{i:6}\t{line}\n" for i, line in enumerate(source.splitlines(), 1))
    samples = {
        "code": source,
        "read_file output": numbered,
        "json": json.dumps([{"id": i, "name": f"item {i}", "ok": i % 2 == 0} for i in range(200)]),
        "prose": "The agent reads the file, edits it and runs the tests again. " * 100,
        "accents": "L'agent lit le fichier, le modifie et relance les tests. Déjà vu. " * 50,
    }
    for kind, text in samples.items():
        ratio = estimate_text_tokens(text) / count(text)
        assert 0.75 < ratio < 1.35, (kind, ratio)
    assert mistral_common_counter("/nonexistent/tekken.json") is None


def test_format_context() -> None:
    assert format_context(84_000, 168_000) == "84,000/168,000 tokens (50%)"
    assert format_context(10, 0) == "10/0 tokens (0%)"
