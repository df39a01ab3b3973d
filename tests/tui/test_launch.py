"""`vibe` reads its config after the first frame: a bad config or flag must still end the app
with exit 1 and one `error:` line, no traceback, and leave the terminal usable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

VIBE = Path(sys.executable).with_name("vibe")


def run_vibe(tmp_path: Path, config: str, *args: str) -> tuple[int, str]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIBE_")}
    env.update(VIBE_HOME=str(home), HOME=str(tmp_path), TERM="xterm-256color")
    child = pexpect.spawn(str(VIBE), list(args), cwd=str(work), env=env, dimensions=(24, 80))
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    return child.exitstatus, child.before.decode(errors="replace")


@pytest.mark.skipif(not VIBE.exists(), reason="the vibe console script is not installed")
def test_bad_config_exits_1_with_one_line(tmp_path):
    code, output = run_vibe(tmp_path, 'active_model = "nope"\n')
    assert code == 1
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "error:" in line]
    assert len(errors) == 1 and "nope" in errors[0]


@pytest.mark.skipif(not VIBE.exists(), reason="the vibe console script is not installed")
def test_continue_without_a_session_exits_1(tmp_path):
    code, output = run_vibe(tmp_path, "", "--continue")
    assert code == 1
    assert "Traceback" not in output and "no session to continue" in output
