"""`vibe serve` on a tiny random model, as a real subprocess: the openai SDK and raw httpx as
clients. Greedy outputs under concurrency equal the outputs alone; overload, bad requests,
context overflow, disconnects, auth and metrics behave as an OpenAI-compatible server's."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("torch")
pytest.importorskip("mistral_common")
openai = pytest.importorskip("openai")

from tests.fakes import tiny_models  # noqa: E402
from tests.fakes.serve_proc import Served, serve  # noqa: E402

VOCAB = 1000 + 1500
KEY = "test-serve-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Served:
    path = tmp_path_factory.mktemp("tiny")
    tiny_models.save_hf(tiny_models.mistral(vocab_size=VOCAB), path)
    tiny_models.mistral_common_tokenizer_file(path, "v13", vocab_size=VOCAB)
    args = ("--model", str(path), "--served-model-name", "tiny", "--max-batch", "8",
            "--max-queue", "8", "--api-key-env", "SERVE_TEST_KEY")  # fmt: skip
    with serve(*args, env={"SERVE_TEST_KEY": KEY}) as s:
        yield s


@pytest.fixture
def client(server: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=KEY, max_retries=0)


def chat(client: openai.OpenAI, text: str, n: int = 12, **kw) -> tuple[str, str]:
    r = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": text}], max_tokens=n,
        temperature=kw.pop("temperature", 0), **kw,
    )  # fmt: skip
    return r.choices[0].message.content, r.choices[0].finish_reason


def metric(server: Served, name: str) -> float:
    text = httpx.get(server.base + "/metrics").text
    total = 0.0
    for m in re.finditer(rf"^vibe_serve_{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        total += float(m.group(2))
    return total


def test_chat_streamed_equals_not_streamed(client):
    text, finish = chat(client, "hello there", 10)
    assert finish == "length" and text
    stream = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hello there"}], max_tokens=10,
        temperature=0, stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    parts, finishes, usage = [], [], None
    for c in stream:
        if c.usage:
            usage = c.usage
        for ch in c.choices:
            parts.append(ch.delta.content or "")
            finishes.append(ch.finish_reason)
    assert "".join(parts) == text
    assert finishes[-1] == "length"
    assert usage.completion_tokens == 10 and usage.prompt_tokens > 0


def test_eight_concurrent_greedy_requests_equal_their_outputs_alone(client, server):
    prompts = [f"request number {i} says {'hi ' * i}" for i in range(8)]
    lengths = [20 + 3 * i for i in range(8)]
    alone = [chat(client, p, n) for p, n in zip(prompts, lengths, strict=True)]
    steps_before = metric(server, "decode_steps_total")
    seqs_before = metric(server, "batch_size_mean") * steps_before

    async def together() -> list[tuple[str, str]]:
        aclient = openai.AsyncOpenAI(base_url=server.v1, api_key=KEY, max_retries=0)

        async def one(p: str, n: int) -> tuple[str, str]:
            r = await aclient.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": p}], max_tokens=n,
                temperature=0,
            )  # fmt: skip
            return r.choices[0].message.content, r.choices[0].finish_reason

        return await asyncio.gather(*(one(p, n) for p, n in zip(prompts, lengths, strict=True)))

    assert asyncio.run(together()) == alone
    steps = metric(server, "decode_steps_total") - steps_before
    seqs = metric(server, "batch_size_mean") * metric(server, "decode_steps_total") - seqs_before
    assert seqs / steps > 2  # they really ran batched, several sequences per step


def test_seed_and_stop(client):
    a = chat(client, "sample me", 16, temperature=1.0, seed=7)
    b = chat(client, "sample me", 16, temperature=1.0, seed=7)
    assert a == b
    text, _ = chat(client, "stop test", 16)
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    cut, finish = chat(client, "stop test", 16, stop=[stop])
    assert finish == "stop" and cut == text[: text.index(stop)]


def test_completions_endpoint(client):
    r = client.completions.create(model="tiny", prompt="Once upon", max_tokens=6, temperature=0)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 6
    streamed = client.completions.create(
        model="tiny", prompt="Once upon", max_tokens=6, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == r.choices[0].text


def test_models_health_and_auth(server, client):
    assert [m.id for m in client.models.list()] == ["tiny"]
    assert httpx.get(server.base + "/health").json() == {"status": "ok"}
    r = httpx.get(server.v1 + "/models")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    wrong = httpx.get(server.v1 + "/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_bad_requests_answer_400_with_an_openai_error(server):
    url = server.v1 + "/chat/completions"
    r = httpx.post(url, content=b"{not json", headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(url, json={"messages": []}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    msgs = [{"role": "user", "content": "x"}]
    r = httpx.post(url, json={"messages": msgs, "temperature": -1}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"
    r = httpx.post(url, json={"messages": [{"role": "wizard", "content": "x"}]}, headers=AUTH)
    assert r.status_code == 400
    assert httpx.get(server.base + "/health").status_code == 200  # still serving


def test_context_overflow_is_context_length_exceeded(server):
    long = "word " * 2000  # the tiny model's context is 512 tokens
    r = httpx.post(
        server.v1 + "/chat/completions", headers=AUTH,
        json={"messages": [{"role": "user", "content": long}], "max_tokens": 4},
    )  # fmt: skip
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded" and "maximum context length" in err["message"]


def test_disconnect_cancels_the_sequence(server):
    cancelled = metric(server, 'requests_total{model="tiny",finish="cancelled"}')
    body = {"messages": [{"role": "user", "content": "go on"}], "max_tokens": 400,
            "temperature": 0, "stream": True}  # fmt: skip
    with httpx.stream("POST", server.v1 + "/chat/completions", json=body, headers=AUTH) as r:
        for line in r.iter_lines():
            if '"content"' in line:
                break  # tokens are flowing: hang up
    deadline = time.monotonic() + 10
    while metric(server, 'requests_total{model="tiny",finish="cancelled"}') == cancelled:
        assert time.monotonic() < deadline, "the sequence was not cancelled"
        time.sleep(0.05)
    assert metric(server, "num_requests_running") == 0


def test_full_queue_answers_503_with_retry_after(server):
    body = {"messages": [{"role": "user", "content": "long one"}], "max_tokens": 300,
            "temperature": 0}  # fmt: skip

    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120, headers=AUTH) as c:
            return await asyncio.gather(
                *(c.post(server.v1 + "/chat/completions", json=body) for _ in range(24))
            )

    responses = asyncio.run(flood())
    codes = [r.status_code for r in responses]
    assert 503 in codes and 200 in codes
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["code"] == "server_overloaded"
    assert codes.count(200) <= 16  # 8 running + 8 queued at most at any time


def test_metrics_are_prometheus_text(server):
    text = httpx.get(server.base + "/metrics").text
    for name in ("generation_tokens_total", "generation_tokens_per_second", "num_requests_running",
                 "num_requests_waiting", "batch_size", "kv_cache_usage_ratio",
                 "time_to_first_token_seconds_count", "num_requests_prefilling",
                 "queued_prompt_tokens", "prefill_chunks_total", "prefill_tokens_total"):  # fmt: skip
        assert re.search(rf"^vibe_serve_{name}\{{", text, re.M), name
    assert "# TYPE vibe_serve_time_to_first_token_seconds histogram" in text


def test_cli_errors_are_one_line(tmp_path: Path):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "vibe", "serve", "--model", str(tmp_path / "missing"),
         "--api-key-env", "SURELY_UNSET_VAR_X"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert (
        r.stderr.strip()
        == "error: --api-key-env SURELY_UNSET_VAR_X: that variable is not set or empty"
    )
    r = subprocess.run([sys.executable, "-m", "vibe", "serve", "--model", "x", "--prefill-chunk",
                        "0"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (r.returncode, r.stderr) == (1, "error: --prefill-chunk must be >= 1\n")
    r = subprocess.run([sys.executable, "-m", "vibe", "serve", "--model", "smollm2", "--quantize",
                        "int4"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "a GGUF file is already quantized" in r.stderr
