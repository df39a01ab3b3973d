"""web_fetch's permission rule: `[tools.web_fetch] allowlist`/`denylist` hold domain patterns.

A pattern is a host name (`docs.python.org`), a wildcard (`*.python.org`, which also matches
`python.org` itself), `domain:HOST` (Claude Code's spelling) or `*` (every host). Hosts match
case-insensitively, without the port. A malformed or non-http(s) URL denies (`url_target`);
then the host goes through the same ladder as every tool's target in tools/permissions.py
(denylist, `never`, plan mode, `always`, allowlist and session patterns, else ask), matched
with `host_matches`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from fnmatch import fnmatchcase
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


class UrlError(ValueError):
    """A URL web_fetch must not fetch (no http(s) host, a NUL byte); the message says why."""


def url_target(url: str) -> str:
    """The host the permission rules judge for a web_fetch of `url`; UrlError when none."""
    if "\x00" in url:
        raise UrlError(f"{TOOL}: the URL contains a NUL byte")
    host = url_host(url)
    if host is None:
        raise UrlError(f"{TOOL} needs an http:// or https:// URL, got {url[:200]!r}")
    return host
