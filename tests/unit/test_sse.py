"""The SSE decoder and payload parsing: line endings, fields, chunk boundaries, junk."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vibe.errors import ProviderError
from vibe.providers.sse import SSEDecoder, SSEEvent, parse_event


def decode(*chunks: bytes | str) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.flush()


def datas(events: list[SSEEvent]) -> list[str]:
    return [e.data for e in events if not e.stray]


@pytest.mark.parametrize("eol", ["\n", "\r", "\r\n"])
def test_every_line_ending_separates_events(eol):
    text = f"data: one{eol}{eol}data: two{eol}{eol}"
    assert datas(decode(text)) == ["one", "two"]


def test_crlf_split_across_chunks_is_one_line_end():
    # A CR at the end of one chunk and the LF at the start of the next are one line end;
    # treating them as two would end the event early and split its data.
    events = decode(b"data: a\r", b"\ndata: b\r", b"\n\r\n")
    assert datas(events) == ["a\nb"]


def test_bytes_split_inside_a_utf8_character():
    raw = "data: café ☕\n\n".encode()
    cut = raw.index("☕".encode()) + 1
    assert datas(decode(raw[:cut], raw[cut:])) == ["café ☕"]


def test_event_id_and_comment_lines():
    text = ': keep-alive\nevent: delta\nid: 7\ndata: {"x": 1}\n\n: ping\n\ndata: y\n\n'
    events = decode(text)
    assert [(e.event, e.id, e.data) for e in events] == [
        ("delta", "7", '{"x": 1}'),
        ("message", "7", "y"),
    ]


def test_multi_line_data_joins_with_newlines():
    text = "data: first\ndata:second\ndata:  third\n\n"
    assert datas(decode(text)) == ["first\nsecond\n third"]


def test_last_event_without_blank_line_is_flushed():
    assert datas(decode("data: tail")) == ["tail"]


def test_u2028_inside_json_is_not_a_line_break():
    payload = {"choices": [{"delta": {"content": "a\u2028b\u2029c\x85d"}}]}
    text = "data: " + json.dumps(payload, ensure_ascii=False) + "\n\n"
    (event,) = decode(text)
    assert parse_event(event) == payload


def test_done_marker_yields_no_payload():
    (event,) = decode("data: [DONE]\n\n")
    assert parse_event(event) is None


def test_stray_junk_line_is_kept_apart_and_ignored():
    events = decode('this is not sse\ndata: {"ok": true}\n\n')
    assert [e.stray for e in events] == [True, False]
    assert parse_event(events[0]) is None
    assert parse_event(events[1]) == {"ok": True}


def test_raw_json_error_body_becomes_a_provider_error():
    body = json.dumps({"error": {"message": "model overloaded", "code": 503}}, indent=2)
    events = decode(body + "\n")
    assert len(events) == 1 and events[0].stray
    with pytest.raises(ProviderError, match="model overloaded"):
        parse_event(events[0])


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "error", "message": "Prompt too large", "type": "invalid_request"},
        {"error": {"message": "Prompt too large"}},
        {"error": "Prompt too large"},
    ],
)
def test_error_payload_inside_the_stream(payload):
    (event,) = decode(f"data: {json.dumps(payload)}\n\n")
    with pytest.raises(ProviderError, match="Prompt too large"):
        parse_event(event)


def test_malformed_json_data_is_a_provider_error_not_a_crash():
    (event,) = decode('data: {"choices": [\n\n')
    with pytest.raises(ProviderError, match="malformed stream data"):
        parse_event(event)


SAMPLE = (
    ': hello\r\nevent: delta\r\nid: 1\r\ndata: {"a": "caf\u00e9 \u2615"}\r\n\r\n'
    "data: one\rdata: two\r\rjunk line\ndata: [DONE]\n\ndata: tail"
)


@given(st.lists(st.integers(min_value=0, max_value=len(SAMPLE.encode())), max_size=12))
def test_any_chunking_gives_the_same_events(cuts):
    raw = SAMPLE.encode()
    bounds = [0, *sorted(cuts), len(raw)]
    pieces = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert decode(*pieces) == decode(raw)


def test_a_huge_line_fed_in_small_chunks_is_linear():
    # The old decoder rescanned its whole buffer on every chunk: 10 MB took 34 s.
    line = b"data: " + b"x" * 5_000_000 + b"\n\n"
    decoder = SSEDecoder()
    start = time.perf_counter()
    events = []
    for i in range(0, len(line), 4096):
        events += decoder.feed(line[i : i + 4096])
    assert time.perf_counter() - start < 3
    assert [len(e.data) for e in events] == [5_000_000]
