"""web_fetch through a real `vibe run` against the loopback fake model server, fetching from a
loopback HTTP server started here: HTML becomes Markdown, JSON passes through, a redirect
chain is followed, a redirect to another host is reported, a 404, a 10 MB page (cut at 120,000
bytes, saying so), a slow server (timeout), an image (refused); the permission rules (asks by
default, so headless denies; `[tools.web_fetch] allowlist` domains allow; denylist denies)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fakes import vibe_proc
from tests.fakes.server import FakeLLMServer
from tests.fakes.vibe_proc import fake_config, vibe, vibe_env, write_config

HTML = (
    "<html><head><title>T</title><style>body{color:red}</style>"
    "<script>alert('x')</script></head><body><h1>Release notes</h1>"
    "<p>Version <b>2.0</b> adds <a href='/x'>links</a>.</p><ul><li>one</li><li>two</li></ul>"
    "</body></html>"
)
BIG = 10 * 1024 * 1024


class _Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, ctype: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        path = self.path
        if path == "/page.html":
            self._send(200, "text/html; charset=utf-8", HTML.encode())
        elif path == "/data.json":
            self._send(200, "application/json", b'{"name": "vibe", "ok": true}')
        elif path.startswith("/hop/"):
            n = int(path.rsplit("/", 1)[1])
            target = "/page.html" if n <= 0 else f"/hop/{n - 1}"
            self._send(302, "text/plain", b"", Location=target)
        elif path == "/elsewhere":
            self._send(301, "text/plain", b"", Location=f"http://localhost:{port}/page.html")
        elif path == "/missing":
            self._send(404, "text/html", b"<h1>nope</h1>")
        elif path == "/big.html":
            row = b"<p>" + b"x" * 1020 + b"</p>\n"
            self._send(200, "text/html", row * (BIG // len(row)))
        elif path == "/slow":
            time.sleep(3)
            self._send(200, "text/plain", b"late")
        elif path == "/shot.png":
            self._send(200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
        else:
            self._send(404, "text/plain", b"no route")


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    httpd.daemon_threads = True
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    out = vibe_env(home, NO_PROXY="127.0.0.1,localhost")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        out.pop(name, None)
    return out


def configure(env: dict[str, str], url: str, extra: str = "") -> None:
    write_config(env, fake_config(url, after=extra))


def run(env, work, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    proc = vibe(env, work, "run", "--output", "stream-json", *args, "fetch it")
    return proc, vibe_proc.events(proc.stdout)


def fetches(*calls: dict) -> list[dict]:
    return [
        {
            "tool_calls": [
                {"id": f"c{i}", "name": "web_fetch", "arguments": args}
                for i, args in enumerate(calls)
            ]
        },
        {"text": "done"},
    ]


def results(events: list[dict]) -> dict[str, dict]:
    return {e["id"]: e for e in events if e["type"] == "tool_result"}


def test_fetches_html_json_redirects_errors_and_caps(env, work, site):
    with FakeLLMServer() as fake:
        fake.script(
            fetches(
                {"url": f"{site}/page.html"},
                {"url": f"{site}/data.json"},
                {"url": f"{site}/hop/3"},
                {"url": f"{site}/hop/7"},
                {"url": f"{site}/elsewhere"},
                {"url": f"{site}/missing"},
                {"url": f"{site}/big.html"},
                {"url": f"{site}/slow", "timeout": 1},
                {"url": f"{site}/shot.png"},
                {"url": "ftp://127.0.0.1/file"},
            )
        )
        configure(env, fake.url)
        proc, events = run(env, work, "--auto-approve")
    assert proc.returncode == 0, proc.stderr
    r = results(events)
    page = r["c0"]
    assert page["status"] == "ok"
    assert "# Release notes" in page["result"] and "**2.0**" in page["result"]
    assert "[links](/x)" in page["result"] and "alert(" not in page["result"]
    assert "color:red" not in page["result"] and "<p>" not in page["result"]
    assert r["c1"]["status"] == "ok" and '{"name": "vibe", "ok": true}' in r["c1"]["result"]
    chain = r["c2"]
    assert chain["status"] == "ok" and "# Release notes" in chain["result"]
    assert "redirected from" in chain["result"]
    assert r["c3"]["status"] == "error" and "more than 5 redirects" in r["c3"]["result"]
    other = r["c4"]
    assert other["status"] == "ok" and "another host" in other["result"]
    assert f"localhost:{site.rsplit(':', 1)[1]}/page.html" in other["result"]
    assert r["c5"]["status"] == "error" and "HTTP 404" in r["c5"]["result"]
    assert "\n" not in r["c5"]["result"].strip()
    big = r["c6"]
    assert big["status"] == "ok" and "[truncated: showing the first" in big["result"]
    assert len(big["result"].encode()) < 121_000
    slow = r["c7"]
    assert slow["status"] == "error" and "timed out" in slow["result"]
    assert slow["duration_ms"] < 2900
    assert r["c8"]["status"] == "error" and "image/png" in r["c8"]["result"]
    assert "refused" in r["c8"]["result"]
    assert r["c9"]["status"] == "denied" and "http:// or https://" in r["c9"]["result"]
    # Every answer of the model is capped: max_output_tokens (default 32,768) as max_tokens.
    assert all(req.body["max_tokens"] == 32_768 for req in fake.requests)


def test_asks_by_default_so_headless_denies(env, work, site):
    with FakeLLMServer() as fake:
        fake.script(fetches({"url": f"{site}/page.html"}))
        configure(env, fake.url)
        proc, events = run(env, work)
    assert proc.returncode == 0, proc.stderr
    denied = results(events)["c0"]
    assert denied["status"] == "denied" and "127.0.0.1 needs approval" in denied["result"]
    final = events[-1]
    assert final["permission_denials"][0]["tool"] == "web_fetch"


def test_allowlist_domains_allow_and_denylist_denies(env, work, site):
    port = site.rsplit(":", 1)[1]
    with FakeLLMServer() as fake:
        fake.script(
            fetches({"url": f"{site}/data.json"}, {"url": f"http://localhost:{port}/data.json"})
        )
        configure(
            env,
            fake.url,
            '[tools.web_fetch]\nallowlist = ["127.0.0.1", "*.example.com"]\n'
            'denylist = ["domain:localhost"]\n',
        )
        proc, events = run(env, work)
    assert proc.returncode == 0, proc.stderr
    r = results(events)
    assert r["c0"]["status"] == "ok" and '"vibe"' in r["c0"]["result"]
    assert r["c1"]["status"] == "denied" and "denylist" in r["c1"]["result"]
