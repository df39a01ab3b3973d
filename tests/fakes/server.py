"""A loopback fake LLM server: real HTTP on 127.0.0.1 (port 0) in a background thread, speaking
the mistral, openai and reasoning stream dialects of POST /v1/chat/completions, recording every
request and playing a script of replies and faults.

SCRIPT FORMAT (plain JSON; the in-process scripted provider reads the same): a list of turns,
one per model request, consumed in order. A turn is an object with:

  reply   "text": str, "reasoning": str,
          "tool_calls": [{"name": str, "arguments": str | object, "id"?: str}],
          "usage": {"prompt_tokens": int, "completion_tokens": int}  (default: a rough count),
          "finish_reason"?: str  (default "tool_calls" when there are calls, else "stop"),
          "dialect"?: "mistral" | "openai" | "reasoning"  (default: the server's)
  faults  "status": int  with optional "retry_after": seconds, "body": str | object,
                "headers": {…}  -> an HTTP error instead of the reply
          "drop": "before" | "middle"  -> close the connection before any data / halfway
          "slow": seconds  -> sleep this long before each stream chunk
          "junk": true  -> stray non-SSE lines, comments and id: lines around the chunks
          "junk": "error"  -> a 200 event stream whose body is a raw JSON error ("body")
          "delay": seconds  -> sleep before answering at all

A fault turn without reply keys still consumes one request; `{"status": 429}` then
`{"text": "hi"}` scripts a rate limit and a successful retry. Instead of a list, a callable
`fn(request: RecordedRequest) -> turn` may answer every request (e.g. to echo the prompt).
Command line: `python -m tests.fakes.server --script FILE [--dialect D] [--port 0] [--loop]`.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

try:
    from tests.fakes import script as sc
except ModuleNotFoundError:  # run as a file: python tests/fakes/server.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.fakes import script as sc

Turn = dict[str, Any]


@dataclass
class RecordedRequest:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    turn: Turn | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return (self.body or {}).get("messages", []) if isinstance(self.body, dict) else []


@dataclass
class FakeLLMServer:
    """Start with `start()` or as a context manager; `url` ends in /v1."""

    dialect: str = "openai"
    reasoning_field: str = "reasoning_content"
    port: int = 0
    loop: bool = False  # replay the script forever (benchmarks)
    requests: list[RecordedRequest] = field(default_factory=list)
    _turns: list[Turn] = field(default_factory=list)
    _played: int = 0
    _responder: Callable[[RecordedRequest], Turn] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(
        self, *turns: Turn | list[Turn] | Callable[[RecordedRequest], Turn]
    ) -> FakeLLMServer:
        """Replace what is left to play: turns, one list of turns, or one callable."""
        with self._lock:
            if len(turns) == 1 and callable(turns[0]):
                self._responder, self._turns = turns[0], []
            else:
                flat = turns[0] if len(turns) == 1 and isinstance(turns[0], list) else turns
                self._responder, self._turns = None, [sc.check_turn(t) for t in flat]
            self._played = 0
        return self

    @property
    def remaining(self) -> int:
        return len(self._turns) - self._played

    def next_turn(self, request: RecordedRequest) -> Turn | None:
        with self._lock:
            self.requests.append(request)
            if self._responder is not None:
                return sc.check_turn(self._responder(request))
            if self._played >= len(self._turns):
                if not (self.loop and self._turns):
                    return None
                self._played = 0
            turn = self._turns[self._played]
            self._played += 1
            return turn

    def start(self) -> FakeLLMServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns quickly
            name="fake-llm",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Real inference servers (uvicorn, aiohttp) set TCP_NODELAY; without it every small SSE
    # write waits on the client's delayed ACK (~40 ms a turn on loopback).
    disable_nagle_algorithm = True
    fake: FakeLLMServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = RecordedRequest("POST", self.path, headers, body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            turn = self.fake.next_turn(request)
        except Exception as exc:  # a broken responder is a test bug: say so over the wire
            self._send_json(500, {"error": {"message": f"fake responder failed: {exc!r}"}})
            return
        request.turn = turn
        if turn is None:
            self._send_json(500, {"error": {"message": "fake server: the script is exhausted"}})
            return
        try:
            self._play(turn, body if isinstance(body, dict) else {})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeouts, cancellation)

    def _play(self, turn: Turn, request: dict[str, Any]) -> None:
        dialect = turn.get("dialect") or self.fake.dialect
        rfield = self.fake.reasoning_field
        if turn.get("delay"):
            time.sleep(float(turn["delay"]))
        if turn.get("status"):
            self._send_status_fault(turn, dialect)
            return
        if not request.get("stream"):
            if turn.get("drop"):
                self._drop()
                return
            self._send_json(200, sc.completion_body(turn, request, dialect, rfield))
            return
        self._start_stream()
        if turn.get("junk") == "error":
            body = turn.get("body") or sc.error_body(500, dialect, "fake upstream exploded")
            text = body if isinstance(body, str) else json.dumps(body, indent=2)
            self._write_chunk(text + "\n")
            self._end_stream()
            return
        payloads = sc.stream_payloads(turn, request, dialect, rfield)
        if turn.get("drop") == "before":
            self._drop()
            return
        cut = len(payloads) // 2 + 1 if turn.get("drop") == "middle" else None
        for i, payload in enumerate(payloads):
            if i == cut:
                self._drop()
                return
            if turn.get("slow"):
                time.sleep(float(turn["slow"]))
            if turn.get("junk"):
                self._write_chunk(f": keep-alive {i}\r\nid: {i}\r\nthis is not sse\r\n\r\n")
            self._write_chunk(f"data: {json.dumps(payload, ensure_ascii=False)}\n\n")
        self._write_chunk("data: [DONE]\n\n")
        self._end_stream()

    def _send_status_fault(self, turn: Turn, dialect: str) -> None:
        status = int(turn["status"])
        headers = dict(turn.get("headers") or {})
        if turn.get("retry_after") is not None:
            headers["Retry-After"] = str(turn["retry_after"])
        body = turn.get("body")
        if body is None:
            body = sc.error_body(status, dialect)
        data = body if isinstance(body, str) else json.dumps(body)
        ctype = "text/plain" if isinstance(body, str) else "application/json"
        self._send_raw(status, data.encode(), ctype, headers)

    def _request_id(self) -> str:
        return f"req-{len(self.fake.requests)}"

    def _send_json(self, status: int, payload: Any) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json", {})

    def _send_raw(self, status: int, data: bytes, ctype: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", self._request_id())
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", self._request_id())
        self.end_headers()
        self.wfile.flush()

    def _write_chunk(self, text: str) -> None:
        data = text.encode("utf-8")
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        """Cut the connection without finishing the chunked body (a crashed upstream)."""
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run the fake LLM server (prints its URL).")
    p.add_argument("--script", type=Path, help="JSON: a list of turns, or {dialect, turns}")
    p.add_argument("--dialect", choices=sc.DIALECTS, default=None)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--loop", action="store_true", help="replay the script forever")
    args = p.parse_args(argv)
    data: Any = json.loads(args.script.read_text()) if args.script else [{"text": "Hello!"}]
    turns = data if isinstance(data, list) else data.get("turns", [])
    dialect = args.dialect or (data.get("dialect") if isinstance(data, dict) else None)
    server = FakeLLMServer(dialect=dialect or "openai", port=args.port, loop=args.loop)
    server.script(turns).start()
    print(server.url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
