"""The ASGI app of `vibe serve` (starlette): routes, bearer auth, errors, SSE streaming.

Each request encodes its prompt, submits a sequence to the scheduler and turns the token ids it
gets back into OpenAI chat/completion objects. A client that goes away (streamed or not)
cancels its sequence; every error is an OpenAI-style JSON body, never a dead server.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from vibe.serve.metrics import Metrics
from vibe.serve.openai_api import (
    ApiError,
    ChatRequest,
    Sampling,
    StopMatcher,
    bad,
    chunk,
    context_error,
    new_id,
    now,
    parse_chat,
    parse_completion,
    parse_json,
    usage,
)
from vibe.serve.scheduler import (
    Done,
    QueueFullError,
    Scheduler,
    SeqRequest,
    ShuttingDownError,
)

log = logging.getLogger("vibe.serve")


@dataclass
class ServeState:
    engine: Any
    scheduler: Scheduler
    metrics: Metrics
    model_name: str
    api_key: str | None
    created: int


Event = tuple[str, Any]  # ("content" | "reasoning", text) | ("tool", call) | ("done", info)


def build_app(state: ServeState) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.scheduler.close()  # after uvicorn's drain: cancel what is left

    async def guarded(request: Request, handler: Any) -> Response:
        try:
            if request.url.path.startswith("/v1/") and state.api_key is not None:
                _check_key(request, state.api_key)
            return await handler(request, state)
        except ApiError as exc:
            return JSONResponse(exc.body(), exc.status, headers=exc.headers)
        except Exception as exc:  # a bug in one request must not take the server down
            log.exception("request failed")
            err = ApiError(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")
            return JSONResponse(err.body(), 500)

    def route(path: str, handler: Any, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await guarded(request, handler)

        return Route(path, endpoint, methods=methods)

    return Starlette(
        routes=[
            route("/v1/chat/completions", chat_completions, ["POST"]),
            route("/v1/completions", completions, ["POST"]),
            route("/v1/models", models, ["GET"]),
            route("/health", health, ["GET"]),
            route("/metrics", metrics, ["GET"]),
        ],
        lifespan=lifespan,
    )


def _check_key(request: Request, key: str) -> None:
    header = request.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else ""
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise ApiError(401, "invalid or missing API key (Authorization: Bearer ...)",
                       "authentication_error", "invalid_api_key")  # fmt: skip


async def health(request: Request, state: ServeState) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics(request: Request, state: ServeState) -> Response:
    running, waiting = state.scheduler.counts()
    state.metrics.running, state.metrics.waiting = running, waiting
    return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")


async def models(request: Request, state: ServeState) -> Response:
    card = {
        "id": state.model_name, "object": "model", "created": state.created,
        "owned_by": "vibe", "max_model_len": state.engine.context_length,
    }  # fmt: skip
    return JSONResponse({"object": "list", "data": [card]})


# -- generation -------------------------------------------------------------------------------


def _submit(state: ServeState, prompt: list[int], s: Sampling) -> Any:
    ctx = state.engine.context_length
    if len(prompt) >= ctx:
        raise context_error(len(prompt), ctx)
    vocab = state.engine.model.cfg.vocab_size
    if any(not 0 <= t < vocab for t in prompt):
        raise bad(f"prompt token ids must be in [0, {vocab})", "prompt")
    budget = ctx - len(prompt) if s.max_tokens is None else min(s.max_tokens, ctx - len(prompt))
    req = SeqRequest(prompt, budget, s.temperature, s.top_p, s.seed, s.ignore_eos)
    try:
        seq = state.scheduler.submit(req, asyncio.get_running_loop())
    except QueueFullError as exc:
        raise ApiError(503, f"the server is overloaded: {exc}; retry later", "server_error",
                       "server_overloaded", headers={"Retry-After": "1"}) from exc  # fmt: skip
    except ShuttingDownError as exc:
        raise ApiError(503, str(exc), "server_error", "shutting_down") from exc
    state.metrics.prompt(len(prompt))
    return seq


async def _tokens(seq: Any) -> AsyncIterator[int | Done]:
    """The sequence's token ids, then its Done; cancels it when the consumer stops early."""
    try:
        while True:
            item = await seq.queue.get()
            yield item
            if isinstance(item, Done):
                return
    finally:
        seq.cancel()


def _done_info(done: Done, reason: str, produced: int) -> dict[str, Any]:
    if done.reason == "error":
        raise ApiError(500, f"generation failed: {done.error}", "server_error")
    return {"reason": reason, "usage": usage(done.prompt_tokens, produced, done.cached_tokens)}


async def _chat_events(state: ServeState, seq: Any) -> AsyncIterator[Event]:
    from engine.events import ReasoningDelta, TextDelta, ToolCallEvent
    from engine.parser import OutputParser

    tok = state.engine.tokenizer
    parser, stop = OutputParser(tok), StopMatcher(seq.stops)
    produced, calls = 0, 0

    def translate(events: list[Any]) -> list[Event]:
        nonlocal calls
        out: list[Event] = []
        for ev in events:
            if isinstance(ev, TextDelta):
                out.append(("content", ev.text))
            elif isinstance(ev, ReasoningDelta):
                out.append(("reasoning", ev.text))
            elif isinstance(ev, ToolCallEvent):
                calls += 1
                out.append(("tool", ev))
        return out

    gen = _tokens(seq)
    async for item in gen:
        if isinstance(item, Done):
            tail = translate(parser.finish())
            for kind, value in _stopped(tail, stop)[0]:
                yield kind, value
            if held := stop.flush():
                yield "content", held
            reason = "tool_calls" if calls else item.reason
            yield "done", _done_info(item, reason, item.completion_tokens)
            return
        produced += 1
        if item in tok.eos_ids:
            continue
        events, hit = _stopped(translate(parser.feed(item)), stop)
        for kind, value in events:
            yield kind, value
        if hit:
            await gen.aclose()  # cancels the sequence
            done = Done("stop", len(seq.request.prompt), produced, seq.reused)
            yield "done", _done_info(done, "stop", produced)
            return


def _stopped(events: list[Event], stop: StopMatcher) -> tuple[list[Event], bool]:
    """Content through the stop matcher (held text flushed before anything else)."""
    out: list[Event] = []
    for kind, value in events:
        if kind == "content":
            text, hit = stop.feed(value)
            if text:
                out.append(("content", text))
            if hit:
                return out, True
            continue
        if held := stop.flush():
            out.append(("content", held))
        out.append((kind, value))
    return out, False


async def _until_disconnect(request: Request, work: Any) -> Any:
    """Await `work` unless the client disconnects first (then cancel it)."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        raise ApiError(499, "client disconnected", "client_closed_request")
    return task.result()


def _chat_prompt(state: ServeState, req: ChatRequest) -> list[int]:
    from engine.errors import BadRequestError

    try:
        return state.engine.tokenizer.encode_chat(req.messages, req.tools, req.reasoning_effort)
    except BadRequestError as exc:
        raise bad(str(exc), "messages") from exc


async def chat_completions(request: Request, state: ServeState) -> Response:
    req = parse_chat(parse_json(await request.body()))
    prompt = await asyncio.to_thread(_chat_prompt, state, req)
    seq = _submit(state, prompt, req.sampling)
    seq.stops = req.sampling.stop
    rid, created, model = new_id("chatcmpl"), now(), req.model or state.model_name
    if req.sampling.stream:
        return _sse(_chat_stream(state, seq, rid, created, model, req.sampling.include_usage))

    async def collect() -> dict[str, Any]:
        content, reasoning, calls, info = [], [], [], {}
        async for kind, value in _chat_events(state, seq):
            if kind == "content":
                content.append(value)
            elif kind == "reasoning":
                reasoning.append(value)
            elif kind == "tool":
                calls.append(_tool_json(value))
            else:
                info = value
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        if calls:
            message["tool_calls"] = calls
        elif message["content"] is None:
            message["content"] = ""
        return {
            "id": rid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": info["reason"]}],
            "usage": info["usage"],
        }  # fmt: skip

    try:
        return JSONResponse(await _until_disconnect(request, collect()))
    finally:
        seq.cancel()


def _tool_json(call: Any, index: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": call.id, "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }  # fmt: skip
    return out if index is None else {"index": index, **out}


async def _chat_stream(
    state: ServeState, seq: Any, rid: str, created: int, model: str, include_usage: bool
) -> AsyncIterator[dict[str, Any]]:
    yield chunk(rid, model, created, {"role": "assistant", "content": ""}, None)
    index = 0
    events = _chat_events(state, seq)
    try:
        async for kind, value in events:
            if kind == "content":
                yield chunk(rid, model, created, {"content": value}, None)
            elif kind == "reasoning":
                yield chunk(rid, model, created, {"reasoning_content": value}, None)
            elif kind == "tool":
                delta = {"tool_calls": [_tool_json(value, index)]}
                index += 1
                yield chunk(rid, model, created, delta, None)
            else:
                final = chunk(rid, model, created, {}, value["reason"])
                if include_usage:
                    yield final
                    yield {**chunk(rid, model, created, {}, None), "choices": [],
                           "usage": value["usage"]}  # fmt: skip
                else:
                    yield final
    finally:
        seq.cancel()


def _sse(chunks: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            async for c in chunks:
                yield f"data: {json.dumps(c, ensure_ascii=False)}\n\n".encode()
        except ApiError as exc:  # mid-stream: the status is sent already; report in-band
            yield f"data: {json.dumps(exc.body())}\n\n".encode()
        yield b"data: [DONE]\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


# -- /v1/completions --------------------------------------------------------------------------


async def completions(request: Request, state: ServeState) -> Response:
    req = parse_completion(parse_json(await request.body()))
    tok = state.engine.tokenizer
    prompt = req.prompt if isinstance(req.prompt, list) else tok.encode(req.prompt)
    seq = _submit(state, prompt, req.sampling)
    rid, created, model = new_id("cmpl"), now(), req.model or state.model_name

    def obj(text: str, finish: str | None) -> dict[str, Any]:
        return {
            "id": rid, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
        }  # fmt: skip

    async def events() -> AsyncIterator[Event]:
        from engine.parser import IncrementalDecoder

        decoder, stop = IncrementalDecoder(tok.decode), StopMatcher(req.sampling.stop)
        produced = 0
        gen = _tokens(seq)
        async for item in gen:
            if isinstance(item, Done):
                if held := stop.flush():
                    yield "content", held
                yield "done", _done_info(item, item.reason, item.completion_tokens)
                return
            produced += 1
            if item in tok.eos_ids:
                continue
            text, hit = stop.feed(decoder.feed(item))
            if text:
                yield "content", text
            if hit:
                await gen.aclose()
                done = Done("stop", len(prompt), produced, seq.reused)
                yield "done", _done_info(done, "stop", produced)
                return

    if req.sampling.stream:

        async def stream() -> AsyncIterator[dict[str, Any]]:
            try:
                async for kind, value in events():
                    if kind == "content":
                        yield obj(value, None)
                    else:
                        yield obj("", value["reason"])
                        if req.sampling.include_usage:
                            yield {**obj("", None), "choices": [], "usage": value["usage"]}
            finally:
                seq.cancel()

        return _sse(stream())

    async def collect() -> dict[str, Any]:
        parts, info = [], {}
        async for kind, value in events():
            if kind == "content":
                parts.append(value)
            else:
                info = value
        return {**obj("".join(parts), info["reason"]), "usage": info["usage"]}

    try:
        return JSONResponse(await _until_disconnect(request, collect()))
    finally:
        seq.cancel()
