"""OpenAI request parsing and response shapes for `vibe serve` (no web framework here).

Requests are validated by hand into small dataclasses, each error an `ApiError` carrying the
OpenAI error body; the chat prompt is encoded by the engine's tokenizer (mistral-common for
Mistral checkpoints, so tools and reasoning use the model's own control tokens).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """An error answered as `{"error": {...}}` with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status, message, type_, code, param,
        )  # fmt: skip
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message, "type": self.type, "param": self.param, "code": self.code,
            }
        }  # fmt: skip


def bad(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad("the request body must be a JSON object")
    return body


def _num(body: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise bad(f"'{key}' must be a number in [{lo:g}, {hi:g}], got {value!r}", key)
    return float(value)


def _int(body: dict[str, Any], key: str, lo: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise bad(f"'{key}' must be an integer >= {lo}, got {value!r}", key)
    return value


@dataclass
class Sampling:
    max_tokens: int | None
    temperature: float
    top_p: float
    seed: int | None
    stop: list[str]
    stream: bool
    include_usage: bool
    ignore_eos: bool = False  # vLLM extension: run to max_tokens (benchmarks)


def parse_sampling(body: dict[str, Any]) -> Sampling:
    stop = body.get("stop")
    if stop is None:
        stops: list[str] = []
    elif isinstance(stop, str):
        stops = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 16:
        stops = list(stop)
    else:
        raise bad("'stop' must be a string or a list of at most 16 strings", "stop")
    if _int(body, "n", 1) not in (None, 1):
        raise bad("only n = 1 is supported", "n")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise bad("'stream_options' must be an object", "stream_options")
    max_tokens = _int(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _int(body, "max_tokens", 1)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad(f"'seed' must be an integer, got {seed!r}", "seed")
    return Sampling(
        max_tokens=max_tokens,
        temperature=_num(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_num(body, "top_p", 1.0, 1e-9, 1.0),
        seed=seed,
        stop=[s for s in stops if s],
        stream=bool(body.get("stream", False)),
        include_usage=bool((opts or {}).get("include_usage", False)),
        ignore_eos=bool(body.get("ignore_eos", False)),
    )


@dataclass
class ChatRequest:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    reasoning_effort: str | None
    sampling: Sampling
    model: str = ""


_ROLES = ("system", "developer", "user", "assistant", "tool")


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' must be a non-empty list", "messages")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise bad(f"messages[{i}] must be an object with a role in {_ROLES}", "messages")
        clean.append(_normalise(m))
    tools = body.get("tools")
    if tools is not None:
        ok = isinstance(tools, list) and all(
            isinstance(t, dict) and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str) for t in tools
        )  # fmt: skip
        if not ok:
            raise bad("'tools' must be a list of {type: function, function: {name, ...}}", "tools")
    if body.get("tool_choice") == "none":
        tools = None
    effort = body.get("reasoning_effort")
    if effort is not None and not isinstance(effort, str):
        raise bad("'reasoning_effort' must be a string", "reasoning_effort")
    model = body.get("model")
    return ChatRequest(clean, tools or None, effort, parse_sampling(body), str(model or ""))


def _normalise(message: dict[str, Any]) -> dict[str, Any]:
    """What mistral-common takes: `developer` is `system`; thinking blocks carry a string;
    fields it does not know (reasoning_content, name on non-tool turns) are dropped."""
    m = {
        k: v
        for k, v in message.items()
        if k in ("role", "content", "tool_calls", "tool_call_id", "name")
    }
    if m["role"] == "developer":
        m["role"] = "system"
    if m["role"] != "tool":
        m.pop("name", None)
    content = m.get("content")
    if isinstance(content, list):
        blocks = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "thinking":
                think = block.get("thinking")
                if isinstance(think, list):
                    think = "".join(p.get("text", "") for p in think if isinstance(p, dict))
                block = {"type": "thinking", "thinking": str(think or "")}
            blocks.append(block)
        m["content"] = blocks
    return m


@dataclass
class CompletionRequest:
    prompt: str | list[int]
    sampling: Sampling
    model: str = ""


def parse_completion(body: dict[str, Any]) -> CompletionRequest:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]
    if (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt)
    ):
        ids: str | list[int] = list(prompt)
    elif isinstance(prompt, str) and prompt:
        ids = prompt
    else:
        raise bad("'prompt' must be a non-empty string or a list of token ids", "prompt")
    sampling = parse_sampling(body)
    if sampling.max_tokens is None:
        sampling.max_tokens = 16  # the OpenAI default for completions
    return CompletionRequest(ids, sampling, str(body.get("model") or ""))


def context_error(prompt_tokens: int, context: int) -> ApiError:
    return bad(
        f"This model's maximum context length is {context} tokens. However, your request has "
        f"{prompt_tokens} input tokens. Please reduce the length of the messages.",
        "messages",
        "context_length_exceeded",
    )


@dataclass
class StopMatcher:
    """Cut generated text at the first stop string; holds back what might start one."""

    stops: list[str]
    buf: str = ""
    hold: int = field(init=False)

    def __post_init__(self) -> None:
        self.hold = max((len(s) for s in self.stops), default=1) - 1

    def feed(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        self.buf += text
        hits = [i for i in (self.buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buf = self.buf[: min(hits)], ""
            return out, True
        cut = len(self.buf) - self.hold
        if cut <= 0:
            return "", False
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def usage(prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def chunk(rid: str, model: str, created: int, delta: dict[str, Any], finish: str | None) -> dict:
    return {
        "id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }  # fmt: skip


def now() -> int:
    return int(time.time())
