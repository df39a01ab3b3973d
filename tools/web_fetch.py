"""The `web_fetch` tool: GET a URL and return its text, HTML converted to Markdown.

Redirects are followed up to MAX_REDIRECTS times on the same host (and between http and https
or `www.`); a redirect to another host is not followed but reported, so the model fetches the
new URL with a call of its own, which the permission check sees (an allowed domain cannot
redirect the fetch somewhere that was never allowed). Text types pass through; HTML becomes
Markdown (markdownify); anything else is refused. The result is capped at MAX_RESULT_BYTES
and says when it was cut. Proxies come from the environment (HTTP(S)_PROXY, NO_PROXY).
Failures (DNS, TLS, HTTP 4xx/5xx, timeouts) are one-line tool errors."""

from __future__ import annotations

import asyncio
import re
from typing import Any, ClassVar
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field

from tools._urlcheck import url_host
from tools.base import Tool, ToolContext, ToolError, ToolResult

MAX_REDIRECTS = 5
MAX_RESULT_BYTES = 120_000
# HTML shrinks when converted: read this much of a page before converting it.
MAX_HTML_BYTES = 2_000_000
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 300.0
USER_AGENT = "vibe-web-fetch/1 (+https://github.com/mistralai; a coding agent)"
_TEXT_TYPES = (
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/x-yaml",
    "application/yaml",
    "application/toml",
    "application/x-sh",
    "application/sql",
    "application/graphql",
    "application/x-ndjson",
)
_HTML_TYPES = ("text/html", "application/xhtml+xml")


class WebFetchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="The http:// or https:// URL to fetch.")
    timeout: float | None = Field(
        default=None,
        gt=0,
        le=MAX_TIMEOUT_S,
        description=f"Seconds to wait for the whole fetch (default {DEFAULT_TIMEOUT_S:g}).",
    )


class WebFetchTool(Tool):
    name: ClassVar[str] = "web_fetch"
    description: ClassVar[str] = (
        "Fetch a web page or text file by URL (GET). HTML is returned as Markdown, text types "
        "(plain text, JSON, XML, code) as they are; other content (images, PDFs, archives) is "
        f"refused. At most {MAX_RESULT_BYTES:,} bytes are returned, saying when the page was "
        f"cut. Redirects on the same host are followed (up to {MAX_REDIRECTS}); a redirect to "
        "another host is reported so you can fetch that URL."
    )
    Args: ClassVar[type[BaseModel]] = WebFetchArgs
    access: ClassVar[str] = "none"

    def __init__(self, default_timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.default_timeout = default_timeout

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolResult:
        assert isinstance(args, WebFetchArgs)
        timeout = args.timeout or self.default_timeout
        try:
            async with asyncio.timeout(timeout):
                return await _fetch(args.url.strip(), timeout)
        except TimeoutError:
            raise ToolError(f"web_fetch {args.url}: timed out after {timeout:g} s") from None


async def _fetch(url: str, timeout: float) -> ToolResult:
    import httpx

    if url_host(url) is None:
        raise ToolError(f"web_fetch needs an http:// or https:// URL, got {url[:200]!r}")
    headers = {"User-Agent": USER_AGENT, "Accept": "text/html, text/*;q=0.9, */*;q=0.5"}
    async with httpx.AsyncClient(
        follow_redirects=False, trust_env=True, timeout=timeout, headers=headers
    ) as client:
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            try:
                async with client.stream("GET", current) as response:
                    if response.is_redirect:
                        target = urljoin(current, response.headers.get("location", ""))
                        if not _same_site(current, target):
                            return _redirected(url, target, response.status_code)
                        if hop == MAX_REDIRECTS:
                            raise ToolError(f"web_fetch {url}: more than {MAX_REDIRECTS} redirects")
                        current = target
                        continue
                    if response.status_code >= 400:
                        reason = response.reason_phrase or "error"
                        raise ToolError(
                            f"web_fetch {current}: HTTP {response.status_code} {reason}"
                        )
                    return await _read(response, url, current)
            except httpx.HTTPError as exc:
                raise ToolError(f"web_fetch {current}: {_describe(exc)}") from None
    raise ToolError(f"web_fetch {url}: more than {MAX_REDIRECTS} redirects")  # unreachable


def _same_site(old: str, new: str) -> bool:
    """A redirect that stays on the host (http↔https and `www.` count as the same host)."""
    a, b = url_host(old), url_host(new)
    if a is None or b is None:
        return False
    return a.removeprefix("www.") == b.removeprefix("www.")


def _redirected(url: str, target: str, status: int) -> ToolResult:
    host = url_host(target)
    if host is None:
        raise ToolError(f"web_fetch {url}: redirected (HTTP {status}) to a non-http URL {target!r}")
    text = (
        f"{url} redirects (HTTP {status}) to another host: {target}\n"
        "It was not followed; call web_fetch with that URL to fetch it."
    )
    return ToolResult(text, data={"url": url, "redirect": target, "status": status})


async def _read(response: Any, url: str, final: str) -> ToolResult:
    ctype = response.headers.get("content-type", "")
    mime = ctype.split(";", 1)[0].strip().lower()
    is_html = mime in _HTML_TYPES
    textual = is_html or _is_text(mime)
    limit = MAX_HTML_BYTES if is_html else MAX_RESULT_BYTES
    body = bytearray()
    more = False
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            more = True
            break
    data = bytes(body[:limit])
    if not mime and not more and _looks_text(data):
        textual = True
    if not textual:
        shown = mime or "an unknown type"
        raise ToolError(
            f"web_fetch {final}: the content is {shown}, not text or HTML; refused "
            "(web_fetch returns web pages and text files only)"
        )
    text = _decode(data, response.encoding, ctype)
    if is_html:
        text = html_to_markdown(text)
    size = response.headers.get("content-length")
    out, cut = _cap(text, MAX_RESULT_BYTES)
    if cut or more:
        total = f" of {int(size):,} bytes" if size and size.isdigit() else ""
        what = "the converted page" if is_html else "the content"
        out += (
            f"\n\n[truncated: showing the first {len(out.encode('utf-8')):,} bytes of {what}"
            f"{total}; web_fetch returns at most {MAX_RESULT_BYTES:,} bytes]"
        )
    head = f"[{final}{'' if final == url else f' (redirected from {url})'} · {mime or 'text'}]"
    return ToolResult(
        f"{head}\n{out}",
        data={"url": url, "final_url": final, "content_type": mime, "truncated": cut or more},
    )


def _is_text(mime: str) -> bool:
    return (
        mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml", "+yaml"))
    )


def _looks_text(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return False
    try:
        data[:8192].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= 8188  # a character cut at the sample's end
    return True


def _decode(data: bytes, encoding: str | None, ctype: str) -> str:
    charset = encoding if "charset=" in ctype.lower() else None
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("utf-8", errors="replace")


def html_to_markdown(html: str) -> str:
    """HTML → Markdown without scripts, styles and other non-content elements."""
    from markdownify import markdownify

    html = re.sub(
        r"<(script|style|noscript|template|svg|iframe)\b[^>]*>.*?</\1\s*>",
        "",
        html,
        flags=re.S | re.I,
    )
    text = markdownify(html, heading_style="ATX", strip=["img"])
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _cap(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore"), True


def _describe(exc: Exception) -> str:
    import httpx

    text = str(exc).strip() or type(exc).__name__
    text = text.splitlines()[0]
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({text})"
    if isinstance(exc, httpx.ConnectError):
        low = text.lower()
        if "ssl" in low or "certificate" in low or "tls" in low:
            return f"TLS error: {text}"
        if "name or service" in low or "nodename" in low or "getaddrinfo" in low:
            return f"could not resolve the host ({text})"
        return f"could not connect: {text}"
    if isinstance(exc, httpx.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"not a valid http(s) URL ({text})"
    return f"{type(exc).__name__}: {text}"
