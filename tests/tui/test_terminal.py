"""The real thing: `vibe` in a pseudo-terminal (pexpect, screen decoded by pyte) against the
loopback fake LLM server: type a prompt, see the streamed answer, Shift+Tab changes the mode."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from .conftest import CONFIG

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

COLS, ROWS = 110, 30
VIBE = Path(sys.executable).with_name("vibe")


class Terminal:
    """A child process on a pty whose output is fed to a pyte screen."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(
            argv[0], argv[1:], cwd=str(cwd), env=env, dimensions=(ROWS, COLS)
        )

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, needle: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not on screen:\n{self.text()}")
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.1))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                raise AssertionError(f"vibe exited; screen:\n{self.text()}") from None

    def send(self, data: str) -> None:
        self.child.send(data)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.mark.skipif(not VIBE.exists(), reason="the vibe console script is not installed")
def test_vibe_in_a_real_terminal(fake_llm, tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(CONFIG.format(url=fake_llm.url))
    fake_llm.script([{"text": "The answer is forty-two, streamed.", "slow": 0.01}])
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIBE_")},
        "VIBE_HOME": str(home),
        "HOME": str(tmp_path),
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
    }
    term = Terminal([str(VIBE)], work, env)
    try:
        term.wait_for("Default")  # the footer is drawn
        term.send("what is the answer?")
        term.wait_for("what is the answer?")
        term.send("\r")
        term.wait_for("The answer is forty-two, streamed.")
        assert fake_llm.requests[0].body["messages"][-1]["content"] == "what is the answer?"
        term.send("\x1b[Z")  # Shift+Tab
        term.wait_for("⏵ Plan")
        term.send("\x04")
        term.send("\x04")  # Ctrl+D twice quits
        term.child.expect(pexpect.EOF, timeout=10)
    finally:
        term.close()
    term.child.close()
    assert term.child.exitstatus == 0
