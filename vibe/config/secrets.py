"""API keys: read from the environment or $VIBE_HOME/.env (mode 0600); never printed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
            value = value[1:-1]
        values[key.strip()] = value
    return values


def lookup_key(env_var: str, env_file: Path) -> str | None:
    """The key named by env_var: the process environment first, then the .env file."""
    if not env_var:
        return None
    return os.environ.get(env_var) or read_env_file(env_file).get(env_var) or None


def save_key(env_file: Path, env_var: str, value: str) -> None:
    """Store a key in the .env file atomically, created with mode 0600."""
    values = read_env_file(env_file)
    values[env_var] = value
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


def redact(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of a known secret with a placeholder."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
