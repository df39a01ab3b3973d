"""Run the real `vibe` CLI as a subprocess against the loopback fake server (for the end-to-end
tests): a clean environment, a `$VIBE_HOME/config.toml` pointing a `generic` provider at the
fake server, and `python -m vibe ...` that never ends in a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fakes.configs import MODEL_CARD


def vibe_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without VIBE_* or *_API_KEY variables, with VIBE_HOME=home,
    NO_COLOR=1 and `extra` on top."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VIBE_") and not k.endswith("_API_KEY")
    }
    env.update(VIBE_HOME=str(home), NO_COLOR="1")
    env.update(extra)
    return env


def fake_config(
    url: str, *, top: str = "", after: str = "", key_env: str = "", backend: str = "generic"
) -> str:
    """A config with one `generic` provider `fake` at `url` and one model `fake-model` (alias
    `fake`, active). `top`: top-level lines (before the first table); `after`: lines after the
    model (more model keys, then further tables)."""
    return f"""{top}active_model = "fake"
[[providers]]
name = "fake"
api_base = "{url}"
api_key_env_var = "{key_env}"
backend = "{backend}"
[[models]]
name = "fake-model"
provider = "fake"
alias = "fake"
{after}"""


def model_card(url: str, top: str = "") -> str:
    """DESIGN.md's model card with its vLLM address replaced by `url`; `top` goes first."""
    return top + MODEL_CARD.replace("http://<your-host-url>:8000/v1", url)


def write_config(home: Path | dict[str, str], text: str) -> Path:
    """Write `text` as $VIBE_HOME/config.toml; `home` is the folder or an env from vibe_env."""
    folder = Path(home["VIBE_HOME"]) if isinstance(home, dict) else home
    path = folder / "config.toml"
    path.write_text(text)
    return path


def vibe(
    env: dict[str, str],
    cwd: Path,
    *args: str,
    timeout: float = 60,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m vibe *args` to completion (stdin: this text, or nothing); asserts that it did
    not end in a Python traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "vibe", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def vibe_popen(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m vibe *args` started with piped stdout/stderr and no stdin."""
    return subprocess.Popen(
        [sys.executable, "-m", "vibe", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def events(stdout: str) -> list[dict]:
    """The JSON lines of `--output stream-json`."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]
