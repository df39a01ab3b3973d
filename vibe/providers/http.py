"""The HTTP side of remote providers: one pooled httpx client, retries with backoff inside a
total time budget, connect/read/stream-idle timeouts, and the single place where foreign
exceptions (httpx, OS, JSON) and error responses become ProviderError."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from vibe.errors import ContextTooLongError, ProviderError
from vibe.providers.base import Chunk
from vibe.providers.sse import DONE, SSEDecoder, SSEEvent, error_message, parse_event

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "mistral-correlation-id", "x-correlation-id")
_CONTEXT_TOO_LONG = re.compile(
    r"context[ _]length|context window|maximum context|too long to fit|prompt is too long"
    r"|too many tokens|too large for model|longer than the model|exceeds? the (?:model|max)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts (seconds) and the retry budget; see VibeConfig.api_* for the user knobs."""

    retry_budget: float = 300.0
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    stream_idle_timeout: float = 120.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0


class StreamParser(Protocol):
    """Turns the JSON payloads of one response into chunks; a fresh one per attempt."""

    def feed(self, payload: dict[str, Any]) -> list[Chunk]: ...

    def finish(self) -> list[Chunk]: ...

    @property
    def complete(self) -> bool:
        """True once the server signalled the end of the answer (finish_reason / [DONE])."""
        ...


@dataclass
class _Attempt:
    """What the retry loop needs to know about one failed try."""

    error: ProviderError
    retry_after: float | None = None


@dataclass
class HttpTransport:
    """A provider's connection to one API base. `transport` is a seam for tests only."""

    provider: str
    api_base: str
    api_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    settings: HttpSettings = field(default_factory=HttpSettings)
    transport: httpx.AsyncBaseTransport | None = None
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            headers = {"Accept": "text/event-stream", **self.headers}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._client = httpx.AsyncClient(
                base_url=self.api_base.rstrip("/") + "/",
                headers=headers,
                timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
                transport=self.transport,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def stream(
        self,
        path: str,
        body: dict[str, Any],
        *,
        model: str,
        new_parser: Callable[[], StreamParser],
    ) -> AsyncIterator[Chunk]:
        """POST `body` and yield parsed chunks; retries until the first chunk is out."""
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            emitted = False
            try:
                async for chunk in self._one_attempt(path, body, new_parser()):
                    emitted = True
                    yield chunk
                return
            except _Retryable as exc:
                failure = exc.attempt
            except ProviderError as exc:
                raise self._decorate(exc, model) from exc
            except (httpx.HTTPError, OSError, ValueError) as exc:
                failure = _Attempt(self._transport_error(exc))
            if emitted or not failure.error.retryable:
                raise self._decorate(failure.error, model) from None
            delay = _backoff(attempt, self.settings, failure.retry_after)
            if time.monotonic() - start + delay > self.settings.retry_budget:
                raise self._decorate(failure.error, model) from None
            await asyncio.sleep(delay)

    async def _one_attempt(
        self, path: str, body: dict[str, Any], parser: StreamParser
    ) -> AsyncIterator[Chunk]:
        client = self._get_client()
        async with client.stream("POST", path.lstrip("/"), json=body) as response:
            request_id = _request_id(response.headers)
            if response.status_code >= 400:
                await response.aread()
                raise _Retryable(self._status_error(response, request_id))
            finished = False  # [DONE] seen, or a whole JSON answer
            got_data, junk = False, ""
            if "json" in response.headers.get("content-type", ""):
                # A JSON body where a stream was expected: an error object or a whole answer.
                raw = (await response.aread()).decode("utf-8", "replace")
                for chunk in parser.feed(_json_or_error(raw, request_id)):
                    yield chunk
                finished = True
            else:
                try:
                    async for event in self._events(response, request_id):
                        if event.stray:
                            junk = junk or event.data
                        elif event.data.strip() == DONE:
                            finished = True
                            continue
                        else:
                            got_data = True
                        for chunk in parser.feed(_parse(event, request_id) or {}):
                            yield chunk
                except (httpx.TransportError, OSError) as exc:
                    if not (finished or parser.complete):  # a cut after the end is harmless
                        error = self._transport_error(exc, request_id)
                        raise _Retryable(_Attempt(error)) from exc
            if not (finished or parser.complete):
                raise _Retryable(_Attempt(_incomplete("" if got_data else junk, request_id)))
            for chunk in parser.finish():
                yield chunk

    async def _events(
        self, response: httpx.Response, request_id: str | None
    ) -> AsyncIterator[SSEEvent]:
        """The SSE events of a body, with the idle timeout between reads."""
        decoder = SSEDecoder()
        idle = self.settings.stream_idle_timeout
        reader = response.aiter_bytes().__aiter__()
        while True:
            try:
                async with asyncio.timeout(idle):
                    data = await reader.__anext__()
            except StopAsyncIteration:
                for event in decoder.flush():
                    yield event
                return
            except TimeoutError:
                stalled = ProviderError(
                    f"the stream stalled: no data for {idle:g}s",
                    request_id=request_id,
                    retryable=True,
                )
                raise _Retryable(_Attempt(stalled)) from None
            for event in decoder.feed(data):
                yield event

    def _status_error(self, response: httpx.Response, request_id: str | None) -> _Attempt:
        status = response.status_code
        text = response.text
        try:
            detail = error_message(json.loads(text)) or _clip(text)
        except ValueError:
            detail = _clip(text) or response.reason_phrase or "error"
        if status in (400, 413, 422) and _CONTEXT_TOO_LONG.search(detail):
            error: ProviderError = ContextTooLongError(detail, status=status, request_id=request_id)
            return _Attempt(error)
        if status in (401, 403):
            detail = f"{detail} (check the API key)"
        error = ProviderError(
            detail, status=status, request_id=request_id, retryable=status in RETRY_STATUSES
        )
        return _Attempt(error, _retry_after(response.headers.get("retry-after")))

    def _transport_error(self, exc: Exception, request_id: str | None = None) -> ProviderError:
        if isinstance(exc, httpx.ConnectTimeout):
            what = f"connection timed out after {self.settings.connect_timeout:g}s"
        elif isinstance(exc, httpx.ReadTimeout):
            what = f"no response within {self.settings.read_timeout:g}s"
        elif isinstance(exc, httpx.ConnectError):
            what = f"cannot connect to {self.api_base}: {_clip(str(exc)) or type(exc).__name__}"
        elif isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            what = f"the connection dropped: {_clip(str(exc)) or type(exc).__name__}"
        elif isinstance(exc, ValueError):
            return ProviderError(f"unreadable response: {_clip(str(exc))}")
        else:
            what = f"{type(exc).__name__}: {_clip(str(exc))}"
        retryable = isinstance(exc, httpx.TransportError | OSError)
        return ProviderError(what, request_id=request_id, retryable=retryable)

    def _decorate(self, exc: ProviderError, model: str) -> ProviderError:
        """Fill in provider and model, and make sure no API key leaks into the message."""
        detail = exc.detail
        if self.api_key and len(self.api_key) >= 4:
            detail = detail.replace(self.api_key, "***")
        cls = type(exc)
        return cls(
            detail,
            provider=exc.provider or self.provider,
            model=exc.model or model,
            status=exc.status,
            request_id=exc.request_id,
            retryable=exc.retryable,
        )


class _Retryable(Exception):
    """Internal: one attempt failed; the loop in `stream` decides whether to try again."""

    def __init__(self, attempt: _Attempt) -> None:
        super().__init__(attempt.error.detail)
        self.attempt = attempt


def _json_or_error(text: str, request_id: str | None) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except ValueError:
        raise ProviderError(f"unreadable response: {_clip(text)}", request_id=request_id) from None
    message = error_message(payload)
    if message is not None or not isinstance(payload, dict):
        raise ProviderError(message or _clip(text), request_id=request_id)
    return payload


def _incomplete(junk: str, request_id: str | None) -> ProviderError:
    """The error for a body that ended before the answer did."""
    if junk:
        detail = f"the server did not send an event stream: {_clip(junk, 120)}"
        return ProviderError(detail, request_id=request_id)
    detail = "the connection closed before the answer was complete"
    return ProviderError(detail, request_id=request_id, retryable=True)


def _parse(event: SSEEvent, request_id: str | None) -> dict[str, Any] | None:
    try:
        return parse_event(event)
    except ProviderError as exc:
        exc.request_id = exc.request_id or request_id
        raise


def _request_id(headers: httpx.Headers) -> str | None:
    return next((headers[h] for h in _REQUEST_ID_HEADERS if headers.get(h)), None)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _backoff(attempt: int, settings: HttpSettings, retry_after: float | None) -> float:
    """Full-jitter exponential backoff; a server's Retry-After wins when it is given."""
    if retry_after is not None:
        return retry_after
    ceiling = min(settings.backoff_cap, settings.backoff_base * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
