"""Compaction end to end: the real `vibe run` against the loopback fake server with a small
threshold: the exact summary request, the smaller next request, the compaction event, the
"context too long" retry path and the circuit breaker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes.server import FakeLLMServer
from tests.fakes.vibe_proc import events, fake_config, vibe, write_config

THRESHOLD = 20_000
CONSTRAINT = "Never touch file legacy.py, it is frozen."
PROMPT = f"Fix the bug in calc.py. {CONSTRAINT}"
SUMMARY = "## Goal\nFix calc.py.\n\n## Next steps\n1. Edit add() in calc.py. (SUMMARY-MARK)"
TOO_LONG = {
    "status": 400,
    "body": {"error": {"message": "This model's maximum context length is 32768 tokens."}},
}


@pytest.fixture
def project(work: Path) -> Path:
    d = work
    # Big enough that reading it makes the next request clearly larger than the compacted one,
    # and small enough that one read_file page (under the 30,000-byte output cap) holds it all.
    body = "".join(f"def f{i}(a, b):\n    return a + b + {i}\n\n" for i in range(400))
    (d / "calc.py").write_text(body + "def add(a, b):\n    return a - b\n")
    (d / "legacy.py").write_text("FROZEN = True\n")
    return d


def configure(env: dict[str, str], url: str) -> None:
    top = "api_retry_max_elapsed_time = 1\napi_read_timeout = 10\n"
    after = f"auto_compact_threshold = {THRESHOLD}\n"
    write_config(env, fake_config(url, top=top, after=after))


def vibe_run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return vibe(env, cwd, "run", *args)


def request_text(body: dict) -> str:
    return json.dumps(body["messages"], ensure_ascii=False)


def test_auto_compaction_summarises_then_continues_with_a_smaller_request(env, project):
    with FakeLLMServer() as fake:
        fake.script(
            # The reported usage puts the context over the threshold after this call.
            {
                "tool_calls": [{"name": "read_file", "arguments": {"path": "calc.py"}}],
                "usage": {"prompt_tokens": THRESHOLD + 500, "completion_tokens": 20},
            },
            {"text": SUMMARY, "usage": {"prompt_tokens": 9000, "completion_tokens": 40}},
            {"text": "Done: add() fixed.", "usage": {"prompt_tokens": 900, "completion_tokens": 5}},
        )
        configure(env, fake.url)
        proc = vibe_run(env, project, PROMPT, "--auto-approve", "--output", "stream-json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    first, summary, after = (r.body for r in fake.requests)

    # The summary request: the active model, no tools, the transcript with the user's words.
    assert summary["model"] == "fake-model"
    assert not summary.get("tools")
    assert "tool_choice" not in summary
    assert [m["role"] for m in summary["messages"]] == ["system", "user"]
    ask = summary["messages"][1]["content"]
    assert PROMPT in ask
    assert "def add(a, b):" in ask  # the tool output is part of what is summarised
    assert "## User instructions and constraints" in ask and "QUOTED VERBATIM" in ask

    # The next request: the system prompt and one continuation message, much smaller.
    assert after["tools"] == first["tools"]
    assert [m["role"] for m in after["messages"]] == ["system", "user"]
    assert after["messages"][0] == first["messages"][0]
    continuation = after["messages"][1]["content"]
    assert SUMMARY in continuation
    assert PROMPT in continuation  # the latest user message, verbatim
    assert len(request_text(after)) < len(request_text(summary)) / 3

    out = events(proc.stdout)
    [compaction] = [e for e in out if e["type"] == "compaction"]
    assert compaction["tokens_before"] >= THRESHOLD
    assert compaction["tokens_after"] < compaction["tokens_before"] / 4
    result = out[-1]
    assert result["type"] == "result" and result["status"] == "completed"
    assert result["result"] == "Done: add() fixed."
    # Usage counts the summary call too; the context line shows used/threshold.
    assert result["usage"]["prompt_tokens"] == THRESHOLD + 500 + 9000 + 900
    assert result["context"]["threshold"] == THRESHOLD
    assert result["context"]["display"].endswith(
        f"/{THRESHOLD:,} tokens ({result['context']['percent']}%)"
    )


def test_context_too_long_error_compacts_once_and_retries_once(env, project):
    with FakeLLMServer() as fake:
        fake.script(TOO_LONG, {"text": SUMMARY}, {"text": "Retried fine."})
        configure(env, fake.url)
        proc = vibe_run(env, project, PROMPT, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"] == "Retried fine."
    rejected, summary, retry = (r.body for r in fake.requests)
    assert rejected["tools"] and not summary.get("tools")
    assert PROMPT in summary["messages"][1]["content"]
    assert [m["role"] for m in retry["messages"]] == ["system", "user"]
    assert SUMMARY in retry["messages"][1]["content"]
    assert PROMPT in retry["messages"][1]["content"]


def test_summary_request_too_long_twice_stops_with_a_clear_error(env, project):
    with FakeLLMServer() as fake:
        fake.script(TOO_LONG, TOO_LONG, TOO_LONG, {"text": "never reached"})
        configure(env, fake.url)
        proc = vibe_run(env, project, PROMPT, "--output", "stream-json")
    assert proc.returncode == 2, proc.stderr
    assert len(fake.requests) == 3  # the call, then two summary attempts: no loop
    assert "Traceback" not in proc.stderr
    result = events(proc.stdout)[-1]
    assert result["type"] == "result" and result["status"] == "error"
    assert "compaction failed" in result["error"]
    assert "too long" in result["error"]
