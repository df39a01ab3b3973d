"""The HTTP side of remote providers: one pooled httpx client, retries with backoff inside a
total time budget, connect/read/stream-idle/whole-response timeouts, and the single place
where foreign exceptions (httpx, OS, JSON) and error responses become ProviderError.

A request that cannot even be built (a bad URL, a key that is not a valid header value) is
not retried: it is a ProviderConfigError (exit 1) naming the config key, never the key."""

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

from vibe.config.secrets import redact
from vibe.errors import ContextTooLongError, ProviderConfigError, ProviderError
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
    response_timeout: float = 600.0
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

    @property
    def progress(self) -> int:
        """How many payloads carried part of the answer so far (keep-alives do not count)."""
        ...


# Errors raised while the request is built or written, before the server is involved:
# retrying cannot help, the configuration has to change.
_LOCAL_ERRORS = (httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL)


class _Clock:
    """The idle and whole-response deadlines of one response. The idle one restarts only
    when the answer advances, so comments and empty events cannot keep a stream alive."""

    def __init__(self, settings: HttpSettings) -> None:
        self.idle, self.total = settings.stream_idle_timeout, settings.response_timeout
        now = time.monotonic()
        self.end = now + self.total
        self.last = now

    def touch(self) -> None:
        self.last = time.monotonic()

    def wait_for(self) -> tuple[float, bool]:
        """Seconds the next read may take, and whether the whole-response deadline bounds it."""
        now = time.monotonic()
        idle_left = self.last + self.idle - now
        total_left = self.end - now
        return max(0.0, min(idle_left, total_left)), total_left <= idle_left


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
    config_key: str = ""  # e.g. "providers[vllm]": named when the request cannot be built
    api_key_env_var: str = ""
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
            except _LOCAL_ERRORS as exc:
                raise self._local_error(exc, model) from None
            except UnicodeEncodeError as exc:
                if exc.encoding != "ascii":  # headers are ASCII; the body is UTF-8
                    raise self._decorate(self._transport_error(exc), model) from None
                raise self._local_error(exc, model) from None
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
        clock = _Clock(self.settings)
        async with client.stream("POST", path.lstrip("/"), json=body) as response:
            request_id = _request_id(response.headers)
            if response.status_code >= 400:
                await self._read_all(response, clock, request_id)
                raise _Retryable(self._status_error(response, request_id))
            finished = False  # [DONE] seen, or a whole JSON answer
            got_data, junk = False, ""
            if "json" in response.headers.get("content-type", ""):
                # A JSON body where a stream was expected: an error object or a whole answer.
                raw = (await self._read_all(response, clock, request_id)).decode("utf-8", "replace")
                for chunk in parser.feed(_json_or_error(raw, request_id)):
                    yield chunk
                finished = True
            else:
                try:
                    async for event in self._events(response, request_id, clock):
                        if event.stray:
                            junk = junk or event.data
                        elif event.data.strip() == DONE:
                            finished = True
                            continue
                        else:
                            got_data = True
                        before = parser.progress
                        for chunk in parser.feed(_parse(event, request_id) or {}):
                            yield chunk
                        if parser.progress != before:
                            clock.touch()
                except (httpx.TransportError, OSError) as exc:
                    if not (finished or parser.complete):  # a cut after the end is harmless
                        error = self._transport_error(exc, request_id)
                        raise _Retryable(_Attempt(error)) from exc
            if not (finished or parser.complete):
                raise _Retryable(_Attempt(_incomplete("" if got_data else junk, request_id)))
            for chunk in parser.finish():
                yield chunk

    async def _events(
        self, response: httpx.Response, request_id: str | None, clock: _Clock
    ) -> AsyncIterator[SSEEvent]:
        """The SSE events of a body, within the idle and whole-response deadlines."""
        decoder = SSEDecoder()
        reader = response.aiter_bytes().__aiter__()
        while True:
            wait, whole = clock.wait_for()
            try:
                async with asyncio.timeout(wait):
                    data = await reader.__anext__()
            except StopAsyncIteration:
                for event in decoder.flush():
                    yield event
                return
            except TimeoutError:
                raise _Retryable(_Attempt(_timed_out(clock, whole, request_id))) from None
            for event in decoder.feed(data):
                yield event

    async def _read_all(
        self, response: httpx.Response, clock: _Clock, request_id: str | None
    ) -> bytes:
        """A whole (non-stream) body, within the whole-response deadline."""
        try:
            async with asyncio.timeout(max(0.0, clock.end - time.monotonic())):
                return await response.aread()
        except TimeoutError:
            raise _Retryable(_Attempt(_timed_out(clock, True, request_id))) from None

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

    def _local_error(self, exc: Exception, model: str) -> ProviderConfigError:
        """The request could not be built: say which setting to fix, never the key itself."""
        where = self.config_key or f"providers[{self.provider}]"
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            what = f"{where}.api_base {self.api_base!r} is not a usable http(s) URL"
        else:
            source = f"the key in {self.api_key_env_var} or " if self.api_key_env_var else ""
            what = (
                f"cannot send the request: {source}{where}.extra_headers holds a value "
                "that is not a valid HTTP header (a line break, control or non-ASCII character)"
            )
        detail = f"{what}; fix the configuration ({type(exc).__name__})"
        return ProviderConfigError(
            redact(detail, [self.api_key] if self.api_key else []),
            provider=self.provider,
            model=model,
        )

    def _decorate(self, exc: ProviderError, model: str) -> ProviderError:
        """Fill in provider and model, and make sure no API key leaks into the message."""
        detail = redact(exc.detail, [self.api_key] if self.api_key else [])
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


def _timed_out(clock: _Clock, whole: bool, request_id: str | None) -> ProviderError:
    if whole:
        detail = f"the response took longer than {clock.total:g}s in all (api_response_timeout)"
    else:
        detail = f"the stream stalled: no answer data for {clock.idle:g}s"
    return ProviderError(detail, request_id=request_id, retryable=True)


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
