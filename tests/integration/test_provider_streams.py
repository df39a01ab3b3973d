"""Streams the scripted fake server cannot produce, from a raw loopback SSE server: keep-alives
forever (idle and whole-response deadlines), finish reasons as the server sent them, huge tool
arguments; and requests that cannot be built (bad key or URL), which are never retried."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_providers import build, chunks_of, request
from vibe.config.schema import ModelConfig, ProviderConfig
from vibe.errors import ConfigError, ProviderConfigError, ProviderError
from vibe.providers.base import FinishChunk, TextChunk, ToolCallChunk, collect
from vibe.providers.http import HttpSettings
from vibe.providers.openai_compat import OpenAICompatProvider

Writes = Callable[[], Iterator[str]]  # the body, piece by piece; a piece "<sleep:S>" waits


class RawSSE:
    """A loopback HTTP server whose every POST answers 200 text/event-stream with `writes()`."""

    def __init__(self, writes: Writes) -> None:
        self.writes = writes
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                fake.requests.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for piece in fake.writes():
                        if piece.startswith("<sleep:"):
                            time.sleep(float(piece[7:-1]))
                            continue
                        data = piece.encode()
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def raw_sse() -> Iterator[Callable[[Writes], RawSSE]]:
    servers: list[RawSSE] = []

    def start(writes: Writes) -> RawSSE:
        servers.append(RawSSE(writes))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def event(payload: Any) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def delta(d: dict[str, Any], finish: Any = None) -> str:
    return event({"choices": [{"index": 0, "delta": d, "finish_reason": finish}]})


def provider_for(url: str, *, idle: float = 5, total: float = 600, key: str | None = None):
    settings = HttpSettings(retry_budget=0, stream_idle_timeout=idle, response_timeout=total)
    pconf = ProviderConfig(name="raw", api_base=url, api_key_env_var="RAW_KEY")
    model = ModelConfig(name="m", provider="raw")
    return OpenAICompatProvider(pconf, model, api_key=key, settings=settings)


# -- deadlines ------------------------------------------------------------------------------


def keepalives(kind: str) -> Writes:
    """A first real token, then keep-alives for up to 20 s (the server gives up after that)."""
    filler = {
        "comments": ": keep-alive\n\n",
        "empty data": "data:\n\n",
        "empty deltas": delta({}),
        "empty content": delta({"content": ""}),
    }[kind]

    def writes() -> Iterator[str]:
        yield delta({"content": "hi"})
        for _ in range(400):
            yield "<sleep:0.05>"
            yield filler

    return writes


@pytest.mark.parametrize("kind", ["comments", "empty data", "empty deltas", "empty content"])
async def test_keepalives_do_not_reset_the_idle_timeout(raw_sse, kind):
    server = raw_sse(keepalives(kind))
    provider = provider_for(server.url, idle=0.6)
    start = time.monotonic()
    seen: list[str] = []
    with pytest.raises(ProviderError, match=r"stalled: no answer data for 0\.6s"):
        async for chunk in provider.stream(request()):
            if isinstance(chunk, TextChunk):
                seen.append(chunk.text)
    await provider.aclose()
    assert seen == ["hi"]
    assert time.monotonic() - start < 3


async def test_steady_data_is_cut_by_the_whole_response_deadline(raw_sse):
    def writes() -> Iterator[str]:
        for _ in range(400):  # a real token every 50 ms, for 20 s: never idle
            yield delta({"content": "x"})
            yield "<sleep:0.05>"

    server = raw_sse(writes)
    provider = provider_for(server.url, idle=0.5, total=1.0)
    start = time.monotonic()
    with pytest.raises(ProviderError, match=r"longer than 1s in all \(api_response_timeout\)"):
        await chunks_of(provider, request())
    assert 0.9 < time.monotonic() - start < 3


async def test_tool_argument_fragments_count_as_progress(raw_sse):
    def writes() -> Iterator[str]:
        yield delta({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "bash"}}]})
        for piece in ['{"comm', 'and": ', '"ls"}']:
            yield "<sleep:0.3>"
            yield delta({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield delta({}, "tool_calls")
        yield "data: [DONE]\n\n"

    server = raw_sse(writes)
    provider = provider_for(server.url, idle=0.5)
    chunks = await chunks_of(provider, request())
    calls = [c.call for c in chunks if isinstance(c, ToolCallChunk)]
    assert [(c.name, c.arguments) for c in calls] == [("bash", '{"command": "ls"}')]


# -- finish reasons -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([delta({"content": "ok"}, "stop")], "stop"),
        ([delta({"content": "ok"}, "length")], "length"),
        ([delta({"content": "ok"}, "LENGTH")], "length"),
        ([delta({"content": "ok"}, "content_filter")], "content_filter"),
        ([delta({"content": "ok"}), "data: [DONE]\n\n"], ""),
        ([delta({}), "data: [DONE]\n\n"], ""),
        ([event({"id": "x", "usage": {"prompt_tokens": 1}}), "data: [DONE]\n\n"], "no_choices"),
        ([event({"id": "x", "choices": []}), "data: [DONE]\n\n"], "no_choices"),
        (
            [
                delta({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "todo"}}]}),
                delta({}, "stop"),
            ],
            "stop",
        ),
    ],
)
async def test_every_stream_ends_with_one_finish_chunk_as_the_server_said(raw_sse, body, reason):
    server = raw_sse(lambda: iter(body))
    chunks = await chunks_of(provider_for(server.url), request())
    finishes = [c for c in chunks if isinstance(c, FinishChunk)]
    assert finishes == [FinishChunk(reason)]
    assert chunks[-1] == FinishChunk(reason), "the finish chunk comes last"
    done = await collect(_replay(chunks))
    assert done.finish_reason == reason


async def _replay(chunks):
    for chunk in chunks:
        yield chunk


async def test_a_whole_json_reply_without_choices_finishes_as_no_choices(tmp_path, fake_llm):
    # A JSON body (not a stream) that is neither an error nor an answer.
    fake_llm.script({"status": 200, "body": {"id": "x", "object": "chat.completion"}})
    provider, _ = build(tmp_path, fake_llm.url)
    chunks = await chunks_of(provider, request())
    assert chunks == [FinishChunk("no_choices")]


# -- quadratic inputs -----------------------------------------------------------------------


async def test_ten_megabyte_argument_in_one_event_is_fast(raw_sse):
    size = 10_000_000
    call = {"index": 0, "id": "c", "function": {"name": "write_file", "arguments": "x" * size}}
    body = [delta({"tool_calls": [call]}), delta({}, "tool_calls")]
    server = raw_sse(lambda: iter(body))
    start = time.monotonic()
    chunks = await chunks_of(provider_for(server.url), request())
    assert time.monotonic() - start < 10  # was 34 s: the decoder rescanned its buffer
    (tool,) = [c.call for c in chunks if isinstance(c, ToolCallChunk)]
    assert len(tool.arguments) == size


async def test_a_megabyte_of_small_fragments_is_fast(raw_sse):
    first = delta({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "write_file"}}]})
    frag = delta({"tool_calls": [{"index": 0, "function": {"arguments": "y" * 16}}]})
    n = 1_000_000 // 16

    def writes() -> Iterator[str]:
        yield first
        for i in range(0, n, 500):  # 500 events per network write
            yield frag * min(500, n - i)
        yield delta({}, "tool_calls")

    server = raw_sse(writes)
    start = time.monotonic()
    chunks = await chunks_of(provider_for(server.url), request())
    assert time.monotonic() - start < 10
    (tool,) = [c.call for c in chunks if isinstance(c, ToolCallChunk)]
    assert tool.arguments == "y" * (16 * n)


# -- requests that cannot be built ----------------------------------------------------------

SECRET = "sk-raw-SECRET-0123456789"


@pytest.mark.parametrize("bad_key", [SECRET + "\nmore", SECRET + "\r", "sk-é-" + SECRET])
async def test_a_key_that_is_no_header_value_fails_at_once_without_retrying(raw_sse, bad_key):
    server = raw_sse(lambda: iter([delta({"content": "never"}, "stop")]))
    settings = HttpSettings(retry_budget=30)
    pconf = ProviderConfig(name="raw", api_base=server.url, api_key_env_var="RAW_KEY")
    provider = OpenAICompatProvider(
        pconf, ModelConfig(name="m", provider="raw"), api_key=bad_key, settings=settings
    )
    start = time.monotonic()
    with pytest.raises(ProviderConfigError) as info:
        await chunks_of(provider, request())
    assert time.monotonic() - start < 2, "a local error is not retried"
    err = info.value
    assert err.exit_code == 1 and not err.retryable
    message = str(err)
    assert "RAW_KEY" in message and "providers[raw]" in message
    assert "\n" not in message
    for form in (SECRET, json.dumps(bad_key)[1:-1], repr(bad_key)[1:-1]):
        assert form not in message and form not in repr(err.args)
    assert server.requests == []


async def test_an_unsupported_scheme_reaching_the_transport_is_a_config_error():
    pconf = ProviderConfig.model_construct(
        name="raw", api_base="ftp://127.0.0.1/v1", api_key_env_var="", extra_headers={}
    )
    provider = OpenAICompatProvider(
        pconf, ModelConfig(name="m", provider="raw"), settings=HttpSettings(retry_budget=30)
    )
    start = time.monotonic()
    with pytest.raises(ProviderConfigError, match=r"providers\[raw\].api_base 'ftp://"):
        await chunks_of(provider, request())
    assert time.monotonic() - start < 2


async def test_a_key_pasted_with_its_newline_works(tmp_path, fake_llm, monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", f"  {SECRET}\n")
    fake_llm.script({"text": "fine"})
    provider, _ = build(tmp_path, fake_llm.url, key_env="FAKE_API_KEY")
    done = await collect(provider.stream(request()))
    await provider.aclose()
    assert done.message.content == "fine"
    assert fake_llm.requests[0].headers["authorization"] == f"Bearer {SECRET}"


async def test_a_key_with_an_inner_newline_is_a_config_error_before_any_request(
    tmp_path, fake_llm, monkeypatch
):
    monkeypatch.setenv("FAKE_API_KEY", f"{SECRET}\nsecond-line")
    with pytest.raises(ConfigError) as info:
        build(tmp_path, fake_llm.url, key_env="FAKE_API_KEY")
    message = str(info.value)
    assert "providers[fakeprov].api_key_env_var" in message and "FAKE_API_KEY" in message
    assert SECRET not in message and "second-line" not in message
    assert fake_llm.requests == []


def test_ftp_api_base_is_rejected_at_load(tmp_path):
    with pytest.raises(ConfigError) as info:
        build(tmp_path, "ftp://x")
    assert info.value.key_path == "providers[0].api_base"
    assert "http:// or https://" in info.value.expected
    assert Path(info.value.file).name == "config.toml"
