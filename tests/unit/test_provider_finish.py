"""Every in-process provider stream ends with exactly one FinishChunk (scripted, recording,
replay), and --record joins streamed pieces in linear time."""

from __future__ import annotations

import json
import time

import pytest

from vibe.messages import Message
from vibe.providers.base import ChatRequest, FinishChunk, TextChunk, collect
from vibe.providers.recording import FORMAT, RecordingProvider, ReplayProvider, _merged
from vibe.providers.scripted import ScriptedProvider

REQUEST = ChatRequest(model="m", messages=[Message("user", "hi")])


async def chunks(provider) -> list:
    return [c async for c in provider.stream(REQUEST)]


@pytest.mark.parametrize(
    ("turn", "reason"),
    [
        ({"text": "a"}, "stop"),
        ({"tool_calls": [{"name": "todo", "arguments": {"todos": []}}]}, "tool_calls"),
        ({"text": "a", "finish_reason": "length"}, "length"),
        ({"text": "a", "finish_reason": "LENGTH"}, "length"),
        ({"text": "", "finish_reason": ""}, ""),
        ({"reasoning": "hmm", "finish_reason": "no_choices"}, "no_choices"),
    ],
)
async def test_scripted_streams_end_with_one_finish(turn, reason):
    got = await chunks(ScriptedProvider([turn]))
    assert [c for c in got if isinstance(c, FinishChunk)] == [FinishChunk(reason)]
    assert got[-1] == FinishChunk(reason)


async def test_recording_and_replay_keep_exactly_one_finish(tmp_path):
    rec = tmp_path / "rec.jsonl"
    turn = {"text": "x" * 100, "finish_reason": "length"}
    recorder = RecordingProvider(ScriptedProvider([turn], chunk_size=1), rec, secrets=[])
    recorded = await chunks(recorder)
    lines = [json.loads(line) for line in rec.read_text().splitlines()]
    assert lines[1]["response"][0] == {"text": "x" * 100}, "text pieces joined"
    replayed = await chunks(ReplayProvider(rec))
    assert [c for c in replayed if isinstance(c, FinishChunk)] == [FinishChunk("length")]
    assert "".join(c.text for c in replayed if isinstance(c, TextChunk)) == "x" * 100
    assert recorded[-1] == replayed[-1] == FinishChunk("length")


async def test_replay_of_a_recording_without_finish_adds_an_empty_one(tmp_path):
    rec = tmp_path / "old.jsonl"
    exchange = {"request": {"messages": [{"role": "user", "content": "hi"}]},
                "response": [{"text": "old"}], "error": None}  # fmt: skip
    rec.write_text(json.dumps({"format": FORMAT}) + "\n" + json.dumps(exchange) + "\n")
    done = await collect(ReplayProvider(rec).stream(REQUEST))
    assert (done.message.content, done.finish_reason) == ("old", "")


def test_merged_joins_runs_and_keeps_other_chunks_in_order():
    call = {"tool_call": {"id": "1", "name": "bash", "arguments": "{}"}}
    pieces = [{"text": "a"}, {"text": "b"}, {"reasoning": "r"}, {"reasoning": "s"}, call,
              {"text": "c"}, {"finish": "stop"}]  # fmt: skip
    assert _merged(pieces) == [
        {"text": "ab"},
        {"reasoning": "rs"},
        call,
        {"text": "c"},
        {"finish": "stop"},
    ]
    assert _merged([]) == []


def test_merged_is_linear_in_the_number_of_pieces():
    pieces = [{"text": "x" * 8}] * 400_000  # 3.2 MB in 8-byte pieces
    start = time.perf_counter()
    (out,) = _merged(pieces)
    assert time.perf_counter() - start < 3
    assert len(out["text"]) == 3_200_000


async def test_collect_reads_the_finish_reason():
    script = [
        {"tool_calls": [{"name": "todo", "arguments": {"todos": []}}], "finish_reason": "stop"}
    ]
    done = await collect(ScriptedProvider(script).stream(REQUEST))
    assert done.finish_reason == "stop" and len(done.message.tool_calls) == 1
