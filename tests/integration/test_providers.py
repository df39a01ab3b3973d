"""Each provider dialect against the loopback fake server: streaming, reasoning, tool calls,
usage, retries, timeouts and error reporting, through the real config -> make_provider path."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.fakes.server import FakeLLMServer
from vibe.config import load_config
from vibe.errors import ConfigError, ContextTooLongError, ProviderError
from vibe.messages import Message, ToolCall
from vibe.providers.base import (
    ChatRequest,
    Chunk,
    ReasoningChunk,
    TextChunk,
    ToolCallChunk,
    UsageChunk,
    collect,
)
from vibe.providers.factory import make_provider

SECRET = "sk-test-SECRET-0123456789"
BACKENDS = {"mistral": ("mistral", "openai"), "openai": ("generic", "openai")}
BACKENDS["reasoning"] = ("generic", "reasoning")


def build(
    tmp_path: Path,
    url: str,
    dialect: str = "openai",
    *,
    key_env: str = "",
    thinking: str = "off",
    budget: float = 2.0,
    idle: float = 5.0,
    provider_extra: str = "",
):
    """A provider made the way the app makes it: config.toml -> load_config -> make_provider."""
    backend, style = BACKENDS[dialect]
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        f"""
active_model = "fake"
api_retry_max_elapsed_time = {budget}
api_connect_timeout = 2
api_read_timeout = 5
api_stream_idle_timeout = {idle}

[[providers]]
name = "fakeprov"
api_base = "{url}"
api_key_env_var = "{key_env}"
backend = "{backend}"
api_style = "{style}"
{provider_extra}

[[models]]
name = "fake-model"
provider = "fakeprov"
alias = "fake"
thinking = "{thinking}"
"""
    )
    loaded = load_config(tmp_path, home=home)
    model, provider = loaded.resolve_model()
    return make_provider(model, provider, loaded), model


def request(*messages: Message, thinking: str = "off") -> ChatRequest:
    msgs = list(messages) or [Message("user", "hello")]
    return ChatRequest(model="fake-model", messages=msgs, thinking=thinking)


async def chunks_of(provider, req: ChatRequest) -> list[Chunk]:
    try:
        return [c async for c in provider.stream(req)]
    finally:
        await provider.aclose()


@pytest.mark.parametrize("dialect", ["mistral", "openai", "reasoning"])
async def test_dialect_streams_text_reasoning_tool_calls_and_usage(tmp_path, dialect):
    with FakeLLMServer(dialect=dialect) as fake:
        fake.script(
            {
                "reasoning": "Let me think about it.",
                "text": "Here is the answer you wanted.",
                "tool_calls": [
                    {"name": "bash", "arguments": {"command": "ls -la", "timeout": 5}},
                    {"name": "grep", "arguments": '{"pattern": "déjà\u2028vu"}'},
                ],
                "usage": {"prompt_tokens": 123, "completion_tokens": 45},
            }
        )
        provider, _ = build(tmp_path, fake.url, dialect)
        chunks = await chunks_of(provider, request())
    texts = [c.text for c in chunks if isinstance(c, TextChunk)]
    assert len(texts) > 1, "the answer must arrive as a stream, not at once"
    assert "".join(texts) == "Here is the answer you wanted."
    reasoning = "".join(c.text for c in chunks if isinstance(c, ReasoningChunk))
    assert reasoning == "Let me think about it."
    calls = [c.call for c in chunks if isinstance(c, ToolCallChunk)]
    assert [(c.name, c.arguments) for c in calls] == [
        ("bash", '{"command": "ls -la", "timeout": 5}'),
        ("grep", '{"pattern": "déjà\u2028vu"}'),
    ]
    assert len({c.id for c in calls}) == 2
    usage = [c.usage for c in chunks if isinstance(c, UsageChunk)]
    assert (usage[-1].prompt_tokens, usage[-1].completion_tokens) == (123, 45)
    body = fake.requests[0].body
    assert body["stream"] is True and body["model"] == "fake-model"
    if dialect == "mistral":
        assert "stream_options" not in body
    else:
        assert body["stream_options"] == {"include_usage": True}


async def test_custom_reasoning_field_name(tmp_path):
    with FakeLLMServer(dialect="reasoning", reasoning_field="thoughts") as fake:
        fake.script({"reasoning": "deep", "text": "shallow"})
        extra = 'reasoning_field_name = "thoughts"'
        provider, _ = build(tmp_path, fake.url, "reasoning", provider_extra=extra)
        done = await collect(provider.stream(request()))
        await provider.aclose()
    assert (done.message.content, done.message.reasoning) == ("shallow", "deep")


async def test_collect_gathers_a_completion(tmp_path, fake_llm):
    fake_llm.script({"text": "four", "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    provider, _ = build(tmp_path, fake_llm.url)
    done = await collect(provider.stream(request()))
    await provider.aclose()
    assert done.message.content == "four" and done.message.reasoning is None
    assert done.usage.total_tokens == 4 and done.finish_reason == "stop"


@pytest.mark.parametrize(("thinking", "effort"), [("high", "high"), ("off", None)])
async def test_mistral_thinking_becomes_reasoning_effort(tmp_path, thinking, effort):
    with FakeLLMServer(dialect="mistral") as fake:
        fake.script({"text": "ok"})
        provider, model = build(tmp_path, fake.url, "mistral", thinking=thinking)
        await chunks_of(provider, request(thinking=model.thinking))
    assert fake.requests[0].body.get("reasoning_effort") == effort


async def test_history_is_serialised_in_the_wire_format(tmp_path, fake_llm):
    fake_llm.script({"text": "done"})
    provider, _ = build(tmp_path, fake_llm.url, "openai")
    call = ToolCall("abcDEF123", "bash", '{"command": "pwd"}')
    history = [
        Message("system", "be brief"),
        Message("user", "where am I?"),
        Message("assistant", "", reasoning="secret thoughts", tool_calls=[call]),
        Message("tool", "/home/me", tool_call_id="abcDEF123", name="bash"),
    ]
    await chunks_of(provider, request(*history))
    sent = fake_llm.requests[0].body["messages"]
    assert sent[0] == {"role": "system", "content": "be brief"}
    assert sent[2]["tool_calls"] == [
        {
            "id": "abcDEF123",
            "type": "function",
            "function": {"name": "bash", "arguments": '{"command": "pwd"}'},
        }
    ]
    assert "secret thoughts" not in str(sent), "openai-style servers do not take reasoning back"
    assert sent[3] == {
        "role": "tool",
        "tool_call_id": "abcDEF123",
        "name": "bash",
        "content": "/home/me",
    }


async def test_reasoning_style_sends_thinking_blocks_back(tmp_path):
    with FakeLLMServer(dialect="reasoning") as fake:
        fake.script({"text": "ok"})
        provider, _ = build(tmp_path, fake.url, "reasoning", thinking="high")
        history = [
            Message("user", "q"),
            Message("assistant", "a", reasoning="r"),
            Message("user", "q2"),
        ]
        await chunks_of(provider, request(*history, thinking="high"))
    body = fake.requests[0].body
    assert body["reasoning_effort"] == "high"
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": [{"type": "text", "text": "r"}]},
        {"type": "text", "text": "a"},
    ]


async def test_429_with_retry_after_is_waited_out_then_succeeds(tmp_path, fake_llm):
    fake_llm.script({"status": 429, "retry_after": 1}, {"text": "finally"})
    provider, _ = build(tmp_path, fake_llm.url, budget=10)
    start = time.monotonic()
    done = await collect(provider.stream(request()))
    await provider.aclose()
    assert done.message.content == "finally"
    assert len(fake_llm.requests) == 2
    assert time.monotonic() - start >= 0.95, "Retry-After: 1 must be honoured"


async def test_persistent_500_fails_with_status_and_request_id(tmp_path, fake_llm):
    fake_llm.script(lambda req: {"status": 500, "body": {"error": {"message": "GPU on fire"}}})
    provider, _ = build(tmp_path, fake_llm.url, budget=1.0)
    start = time.monotonic()
    with pytest.raises(ProviderError) as info:
        await chunks_of(provider, request())
    err = info.value
    assert time.monotonic() - start < 3, "the retry budget bounds the whole call"
    assert len(fake_llm.requests) >= 2, "5xx must be retried"
    assert err.status == 500 and err.request_id == f"req-{len(fake_llm.requests)}"
    line = str(err)
    assert "\n" not in line
    for part in ("fakeprov", "fake-model", "HTTP 500", "GPU on fire", err.request_id):
        assert part in line
    assert not isinstance(err, ContextTooLongError)


async def test_client_error_is_not_retried(tmp_path, fake_llm):
    fake_llm.script({"status": 400, "body": {"error": {"message": "bad tool schema"}}})
    provider, _ = build(tmp_path, fake_llm.url, budget=5)
    with pytest.raises(ProviderError, match="bad tool schema"):
        await chunks_of(provider, request())
    assert len(fake_llm.requests) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            400,
            "This model's maximum context length is 32768 tokens. However, you requested "
            "40000 tokens (39000 in the messages, 1000 in the completion).",
        ),
        (
            400,
            "The prompt (total length 40000) is too long to fit into the model "
            "(context length 32768).",
        ),
        (
            400,
            "Prompt contains 140000 tokens and 0 draft tokens, too large for model with "
            "131072 maximum context length",
        ),
        (
            422,
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
            "Given: 5000 `inputs` tokens and 100 `max_new_tokens`; context length exceeded",
        ),
    ],
)
async def test_context_too_long_is_recognised_and_not_retried(tmp_path, fake_llm, status, message):
    fake_llm.script({"status": status, "body": {"object": "error", "message": message}})
    provider, _ = build(tmp_path, fake_llm.url, budget=5)
    with pytest.raises(ContextTooLongError) as info:
        await chunks_of(provider, request())
    assert info.value.status == status
    assert len(fake_llm.requests) == 1


async def test_drop_before_any_output_is_retried(tmp_path, fake_llm):
    fake_llm.script({"drop": "before"}, {"text": "second time lucky"})
    provider, _ = build(tmp_path, fake_llm.url)
    done = await collect(provider.stream(request()))
    await provider.aclose()
    assert done.message.content == "second time lucky"
    assert len(fake_llm.requests) == 2


async def test_drop_mid_answer_is_reported_not_retried(tmp_path, fake_llm):
    fake_llm.script({"text": "one two three four five six seven", "drop": "middle"}, {"text": "x"})
    provider, _ = build(tmp_path, fake_llm.url, budget=5)
    seen: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for chunk in provider.stream(request()):
            if isinstance(chunk, TextChunk):
                seen.append(chunk.text)
    await provider.aclose()
    assert seen, "part of the answer was streamed before the drop"
    assert len(fake_llm.requests) == 1, "a half-shown answer must not be silently replayed"
    assert "fakeprov" in str(info.value) and info.value.request_id == "req-1"


async def test_junk_lines_between_events_are_tolerated(tmp_path, fake_llm):
    fake_llm.script({"text": "still fine", "reasoning": "hmm", "junk": True})
    provider, _ = build(tmp_path, fake_llm.url, "reasoning")
    done = await collect(provider.stream(request()))
    await provider.aclose()
    assert (done.message.content, done.message.reasoning) == ("still fine", "hmm")


async def test_raw_json_error_body_in_a_stream_becomes_a_provider_error(tmp_path, fake_llm):
    fake_llm.script({"junk": "error", "body": {"error": {"message": "upstream exploded"}}})
    provider, _ = build(tmp_path, fake_llm.url, budget=5)
    with pytest.raises(ProviderError, match="upstream exploded") as info:
        await chunks_of(provider, request())
    assert info.value.request_id == "req-1"


async def test_a_non_stream_body_is_reported_with_its_first_line(tmp_path, fake_llm):
    fake_llm.script({"junk": "error", "body": "<html>\n<h1>502 Bad Gateway</h1>\n</html>"})
    provider, _ = build(tmp_path, fake_llm.url, budget=5)
    with pytest.raises(ProviderError, match="did not send an event stream: <html>"):
        await chunks_of(provider, request())
    assert len(fake_llm.requests) == 1


async def test_stalled_stream_hits_the_idle_timeout(tmp_path, fake_llm):
    fake_llm.script({"text": "a b c", "slow": 2})
    provider, _ = build(tmp_path, fake_llm.url, budget=0, idle=0.3)
    start = time.monotonic()
    with pytest.raises(ProviderError, match="stalled"):
        await chunks_of(provider, request())
    assert time.monotonic() - start < 1.5


async def test_slow_but_steady_stream_is_fine(tmp_path, fake_llm):
    fake_llm.script({"text": "a b c", "slow": 0.05})
    provider, _ = build(tmp_path, fake_llm.url, idle=1)
    done = await collect(provider.stream(request()))
    await provider.aclose()
    assert done.message.content == "a b c"


async def test_api_key_is_sent_but_never_shown(tmp_path, fake_llm, monkeypatch):
    monkeypatch.setenv("FAKE_API_KEY", SECRET)
    fake_llm.script({"status": 401, "body": {"error": {"message": f"invalid key {SECRET}"}}})
    provider, _ = build(tmp_path, fake_llm.url, key_env="FAKE_API_KEY")
    with pytest.raises(ProviderError) as info:
        await chunks_of(provider, request())
    assert fake_llm.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.args)
    assert "HTTP 401" in str(info.value)


async def test_missing_api_key_is_a_config_error_before_any_request(
    tmp_path, fake_llm, monkeypatch
):
    monkeypatch.delenv("FAKE_API_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        build(tmp_path, fake_llm.url, key_env="FAKE_API_KEY")
    assert "providers[fakeprov].api_key_env_var" in str(info.value)
    assert "FAKE_API_KEY is not set" in str(info.value)
    assert fake_llm.requests == []


async def test_unreachable_server_is_a_provider_error(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider, _ = build(tmp_path, f"http://127.0.0.1:{port}/v1", budget=0.5)
    with pytest.raises(ProviderError, match="cannot connect"):
        await chunks_of(provider, request())
