"""API keys: read from the environment or $VIBE_HOME/.env (mode 0600); never printed.

Keys are stripped of surrounding whitespace when read (a key pasted with its newline would
make every request fail). `redact` hides a key in every form it takes in our output: as is,
stripped, JSON-escaped and as Python's repr writes it."""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

PLACEHOLDER = "***"
MIN_SECRET_LEN = 4  # shorter values would redact ordinary words


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file (KEY=VALUE, optional quotes, # comments); missing file: empty."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1].strip()
        values[key.strip()] = value
    return values


def lookup_key(env_var: str, env_file: Path) -> str | None:
    """The key named by env_var: the process environment first, then the .env file."""
    if not env_var:
        return None
    value = (os.environ.get(env_var) or "").strip()
    return value or read_env_file(env_file).get(env_var) or None


def save_key(env_file: Path, env_var: str, value: str) -> None:
    """Store a key in the .env file atomically, created with mode 0600."""
    values = read_env_file(env_file)
    values[env_var] = value.strip()
    env_file.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{k}={v}\n" for k, v in values.items())
    fd, tmp = tempfile.mkstemp(dir=env_file.parent, prefix=".env.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, env_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def secret_forms(secret: str) -> list[str]:
    """Every spelling of `secret` that our output can contain: raw, stripped, JSON-escaped
    (ASCII-only or not) and repr'd (without the quotes). A key shorter than MIN_SECRET_LEN
    once stripped has none: redacting it would hide ordinary words."""
    if len(secret.strip()) < MIN_SECRET_LEN:
        return []
    forms: list[str] = []
    for value in dict.fromkeys((secret, secret.strip())):
        forms += [
            value,
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            repr(value)[1:-1],
        ]
    return list(dict.fromkeys(forms))


@functools.lru_cache(maxsize=64)
def _pattern(secrets: tuple[str, ...]) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    forms = {form for secret in secrets if secret for form in secret_forms(secret)}
    if not forms:
        return (), None
    ordered = sorted(forms, key=lambda f: (-len(f), f))  # longest first: whole forms win
    return tuple(ordered), re.compile("|".join(map(re.escape, ordered)))


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of a known secret, in any of its forms, with a placeholder."""
    forms, pattern = _pattern(tuple(secrets))
    if pattern is None or not any(form in text for form in forms):
        return text  # the common case: one fast substring scan per form
    return pattern.sub(PLACEHOLDER, text)
