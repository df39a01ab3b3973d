"""web_fetch's permission rule: `[tools.web_fetch] allowlist`/`denylist` hold domain patterns.

A pattern is a host name (`docs.python.org`), a wildcard (`*.python.org`, which also matches
`python.org` itself), `domain:HOST` (Claude Code's spelling) or `*` (every host). Hosts match
case-insensitively, without the port. Order: a malformed or non-http(s) URL denies; a denylist
match denies; `never` denies; plan mode lets web_fetch ask (it only reads); `always`, an
allowlist or session pattern allows; everything else asks. `evaluate` in tools/permissions.py
calls `url_verdict` for the web_fetch tool; auto-approve applies there as for every tool.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

TOOL = "web_fetch"


_NUMERIC_LABELS = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}")


def canonical_host(host: str) -> str | None:
    """The host a connection goes to, spelled one way: lower case, no trailing dot, IDNA
    (so `evil。com` is `evil.com`), IPv4 in dotted decimal (`2852039166` and `0xa9fea9fe` are
    `169.254.169.254`, as the resolver reads them), IPv6 compressed. None: not a valid host."""
    host = host.strip().lower()
    try:
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    host = host.rstrip(".")
    if _NUMERIC_LABELS.fullmatch(host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    if ":" in host:
        try:
            return ipaddress.ip_address(host).compressed
        except ValueError:
            return None
    return host


def url_host(url: str) -> str | None:
    """The canonical host of an http(s) URL, or None when it is not one."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return canonical_host(host)


def host_matches(pattern: str, host: str) -> bool:
    """Whether `host` matches one domain pattern of an allowlist or denylist."""
    pat = pattern.strip().lower()
    if pat.startswith("domain:"):
        pat = pat[len("domain:") :]
    if "://" in pat:  # a whole URL written as a pattern: its host
        pat = url_host(pat) or pat
    pat = pat.rstrip(".")
    if not pat:
        return False
    if pat == "*":
        return True
    wild = pat.startswith("*.")
    base = pat[2:] if wild else pat
    if not any(c in base for c in "*?["):  # a plain name: compared as the host is
        base = canonical_host(base) or base
    if wild and host == base:
        return True
    return fnmatchcase(host, "*." + base if wild else base)


def url_pattern(url: str) -> str:
    """The pattern "allow for this session / always" remembers: the exact host, with any
    wildcard character in it escaped (`http://*/` must not become "every host")."""
    host = url_host(url)
    return re.sub(r"([*?[])", r"[\1]", host) if host else "\x00never"


def url_verdict(
    url: str,
    tool: Any,  # tools.permissions.ToolPolicy
    allow: tuple[str, ...],
    policy: Any,  # tools.permissions.PermissionPolicy
    verdict: Callable[[str, str], Any],
) -> Any:
    """The Verdict (built with `verdict(action, reason)`) for a web_fetch of `url`."""
    if "\x00" in url:
        return verdict("deny", "web_fetch: the URL contains a NUL byte")
    host = url_host(url)
    if host is None:
        return verdict("deny", f"web_fetch needs an http:// or https:// URL, got {url[:200]!r}")
    for pattern in tool.denylist:
        if host_matches(pattern, host):
            return verdict("deny", f"web_fetch {host} matches the denylist pattern {pattern!r}")
    if tool.permission == "never":
        return verdict("deny", "the web_fetch tool is disabled (permission = never)")
    if policy.read_only and TOOL not in policy.read_only_tools:
        return verdict("deny", "plan mode is read-only: web_fetch is not allowed")
    if tool.permission == "always":
        return verdict("allow", "web_fetch is always allowed")
    if any(host_matches(p, host) for p in allow):
        return verdict("allow", f"web_fetch {host} matches an allowed domain")
    return verdict("ask", f"web_fetch {host} needs approval")
