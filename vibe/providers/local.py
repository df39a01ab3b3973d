"""The `local` backend: our embedded engine behind the same Provider interface as the remote
APIs. torch and engine are imported here only, inside functions, when this backend is chosen."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from vibe.config import LoadedConfig, ModelConfig, ProviderConfig
from vibe.errors import ContextTooLongError, ProviderError
from vibe.messages import ToolCall, Usage
from vibe.providers.base import (
    ChatRequest,
    Chunk,
    FinishChunk,
    ReasoningChunk,
    TextChunk,
    ToolCallChunk,
    UsageChunk,
)
from vibe.providers.wire import to_wire_list

# Loaded engines by (checkpoint, tp, draft, k, device, dtype, quantize): switching modes back
# and forth must not reload weights.
_ENGINES: dict[tuple[Any, ...], Any] = {}
_LOAD_LOCK = threading.Lock()
# One generation at a time: the engine refuses a second one (EngineBusyError), so requests of
# concurrent agents (a parent's subagents) wait here, in their worker threads, and take turns.
_GENERATE_LOCK = threading.Lock()
_DONE = object()


def _engine_for(model: ModelConfig, provider: ProviderConfig) -> Any:
    key = (
        model.name,
        provider.tensor_parallel_size,
        model.speculative_model,
        model.num_speculative_tokens,
        provider.device,
        provider.dtype,
        model.quantize,
    )
    with _LOAD_LOCK:
        if key not in _ENGINES:
            from engine import Engine

            kwargs: dict[str, Any] = {
                "tp": provider.tensor_parallel_size,
                "device": provider.device,
                "dtype": provider.dtype,
            }
            if model.speculative_model:
                kwargs["draft"] = model.speculative_model
                kwargs["spec_k"] = model.num_speculative_tokens
            if model.quantize:
                kwargs["quantize"] = model.quantize
            if model.max_context_length:
                kwargs["max_context"] = model.max_context_length
            _ENGINES[key] = Engine.load(model.name, **kwargs)
        return _ENGINES[key]


class LocalProvider:
    """Runs chat turns on the embedded engine in a worker thread and streams them as chunks."""

    takes_images = False  # the engine reads text only (vibe.images tells the user so)

    def __init__(self, model: ModelConfig, provider: ProviderConfig, loaded: LoadedConfig) -> None:
        self.name = provider.name
        self.model = model
        self.provider = provider

    async def aclose(self) -> None:
        return None

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                with _GENERATE_LOCK:
                    if stop.is_set():  # cancelled while waiting for its turn
                        return
                    with contextlib.closing(self._events(request)) as events:
                        for item in events:
                            if stop.is_set():
                                break
                            loop.call_soon_threadsafe(queue.put_nowait, item)
            except BaseException as exc:  # handed to the event loop, re-raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        worker = threading.Thread(target=produce, name="vibe-local-engine", daemon=True)
        worker.start()
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise self._translate(item) from item
                yield item
        finally:
            stop.set()  # the generator is closed: tell the engine thread to stop generating

    def _events(self, request: ChatRequest) -> Iterator[Chunk]:
        from engine import Finished, ReasoningDelta, TextDelta, ToolCallEvent
        from engine import Usage as EngineUsage

        engine = _engine_for(self.model, self.provider)
        temperature = request.temperature if request.temperature is not None else 0.0
        effort = None if request.thinking == "off" else request.thinking
        for event in engine.chat(
            to_wire_list(request.messages, images="none"),  # the engine takes text only
            tools=request.tools or None,
            temperature=temperature,
            max_tokens=request.max_tokens,
            reasoning_effort=effort,
        ):
            match event:
                case TextDelta(text=t):
                    yield TextChunk(t)
                case ReasoningDelta(text=t):
                    yield ReasoningChunk(t)
                case ToolCallEvent(id=i, name=n, arguments_json=a):
                    yield ToolCallChunk(ToolCall(i, n, a))
                case EngineUsage(prompt_tokens=p, completion_tokens=c):
                    yield UsageChunk(Usage(p, c))
                case Finished(reason=r):
                    yield FinishChunk(r)

    def _translate(self, exc: BaseException) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        try:  # the engine is loaded by now (it raised exc); imported here only, like torch
            from engine.errors import ContextLengthError
        except ImportError:  # the engine is not installed: no engine error can occur
            ContextLengthError = ()  # type: ignore[assignment,misc]
        kind = type(exc).__name__
        cls = ContextTooLongError if isinstance(exc, ContextLengthError) else ProviderError
        return cls(str(exc) or kind, provider=self.name, model=self.model.key)
