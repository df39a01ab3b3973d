"""A pure server-sent-events decoder: bytes in, events out; no I/O, no httpx.
Lines end with CR, LF or CRLF only (never U+2028); lines that are not SSE fields are kept
as `stray` events so a raw JSON error body becomes a readable error instead of a crash."""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Any

from vibe.errors import ProviderError

DONE = "[DONE]"
_FIELDS = ("data", "event", "id", "retry")
_EOL = re.compile(r"\r\n|\r|\n")  # SSE line ends; never U+2028 and friends


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event; `stray` events carry non-SSE lines (junk, a raw JSON body)."""

    data: str
    event: str = "message"
    id: str | None = None
    stray: bool = False


class SSEDecoder:
    """Incremental decoder: `feed` chunks as they arrive, then `flush` at end of stream.

    Linear time: each chunk is scanned once for line ends; the unterminated end of a line is
    kept as a list of pieces, joined once when its line end arrives."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []  # pieces of the line not yet terminated
        self._after_cr = False  # the last chunk ended with CR: a leading LF belongs to it
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._stray: list[str] = []

    def feed(self, chunk: bytes | str) -> list[SSEEvent]:
        text = self._utf8.decode(chunk) if isinstance(chunk, bytes) else chunk
        out: list[SSEEvent] = []
        if not text:
            return out
        if self._after_cr and text[0] == "\n":
            text = text[1:]
        self._after_cr = text.endswith("\r")
        start = 0
        for match in _EOL.finditer(text):
            piece = text[start : match.start()]
            if self._partial:
                self._partial.append(piece)
                piece = "".join(self._partial)
                self._partial.clear()
            self._line(piece, out)
            start = match.end()
        if start < len(text):
            self._partial.append(text[start:])
        return out

    def flush(self) -> list[SSEEvent]:
        """End of stream: a last unterminated line and a pending event are dispatched."""
        out = self.feed(self._utf8.decode(b"", final=True))
        if self._partial:
            line = "".join(self._partial)
            self._partial.clear()
            self._line(line, out)
        self._dispatch(out)
        self._flush_stray(out)
        return out

    def _line(self, line: str, out: list[SSEEvent]) -> None:
        if not line:
            self._flush_stray(out)
            self._dispatch(out)
            return
        if line.startswith(":"):
            return  # comment / keep-alive
        field, colon, value = line.partition(":")
        if field not in _FIELDS:
            self._stray.append(line)
            return
        self._flush_stray(out)
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._last_id = value

    def _dispatch(self, out: list[SSEEvent]) -> None:
        if self._data:
            out.append(SSEEvent("\n".join(self._data), self._event or "message", self._last_id))
        self._data, self._event = [], ""

    def _flush_stray(self, out: list[SSEEvent]) -> None:
        if self._stray:
            out.append(SSEEvent("\n".join(self._stray), "stray", self._last_id, stray=True))
            self._stray = []


def error_message(payload: Any) -> str | None:
    """The human message of an error payload in any of the usual shapes, else None."""
    if not isinstance(payload, dict):
        return None
    err = payload.get("error")
    if isinstance(err, dict):
        return _text(err.get("message") or err)
    if isinstance(err, str) and err:
        return err
    if payload.get("object") == "error" or (
        "message" in payload and "choices" not in payload and "id" not in payload
    ):
        return _text(payload.get("message") or payload.get("detail") or payload)
    if "detail" in payload and "choices" not in payload:
        return _text(payload["detail"])
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def parse_event(event: SSEEvent) -> dict[str, Any] | None:
    """The JSON object of a data event; None for `[DONE]` and for ignorable junk.

    Raises ProviderError for an error payload (inline or raw JSON body) and malformed JSON.
    """
    data = event.data.strip()
    if event.stray:
        try:
            payload = json.loads(data)
        except ValueError:
            return None  # junk between events: tolerated, like other SSE clients do
        message = error_message(payload)
        if message is None:
            return None
        raise ProviderError(message)
    if data == DONE:
        return None
    if not data:
        return None
    try:
        payload = json.loads(data)
    except ValueError:
        raise ProviderError(f"malformed stream data: {_clip(data)}") from None
    if event.event == "error" or error_message(payload) is not None:
        raise ProviderError(error_message(payload) or _clip(data))
    if not isinstance(payload, dict):
        raise ProviderError(f"unexpected stream data: {_clip(data)}")
    return payload


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
