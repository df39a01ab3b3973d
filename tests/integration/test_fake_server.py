"""The fake server itself: non-streamed replies, recording, a callable script, exhaustion."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.server import FakeLLMServer


def test_non_streamed_reply_and_recorded_request(fake_llm):
    fake_llm.script({"text": "hi", "tool_calls": [{"name": "todo", "arguments": {"todos": []}}]})
    r = httpx.post(
        f"{fake_llm.url}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "yo"}]},
        headers={"X-Test": "1"},
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-1"
    choice = r.json()["choices"][0]
    assert choice["message"]["content"] == "hi" and choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"todos": []}'
    (req,) = fake_llm.requests
    assert req.headers["x-test"] == "1" and req.messages == [{"role": "user", "content": "yo"}]


def test_callable_script_echoes_and_exhausted_script_is_a_500():
    with FakeLLMServer() as fake:
        fake.script(lambda req: {"text": req.messages[-1]["content"].upper()})
        r = httpx.post(f"{fake.url}/chat/completions", json={"messages": [{"content": "abc"}]})
        assert r.json()["choices"][0]["message"]["content"] == "ABC"
        fake.script({"text": "once"})
        httpx.post(f"{fake.url}/chat/completions", json={"messages": []})
        r = httpx.post(f"{fake.url}/chat/completions", json={"messages": []})
        assert r.status_code == 500 and "exhausted" in r.text


def test_typo_in_a_script_fails_loudly(fake_llm):
    with pytest.raises(ValueError, match="unknown script keys"):
        fake_llm.script({"txt": "oops"})
