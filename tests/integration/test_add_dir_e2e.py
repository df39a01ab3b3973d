"""The working-folder boundary through a real `vibe run` against the loopback fake server:
writes outside the working folder are asked about (a denial, headless) unless `--add-dir` opens
that folder, and `outside_workdir = "deny"` refuses them even under --auto-approve. Marker files
outside show that nothing was touched."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes.vibe_proc import fake_config, vibe, vibe_env, write_config

MARKER = "original marker\n"


def configure(home: Path, url: str, extra: str = "") -> None:
    write_config(home, fake_config(url, top=extra))


@pytest.fixture
def other(tmp_path) -> Path:
    other = tmp_path / "other"
    other.mkdir()
    (other / "marker.txt").write_text(MARKER)
    return other


def vibe_run(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return vibe(vibe_env(home), cwd, "run", "--output", "json", *args)


def result(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


def writes_outside(other: Path) -> list[dict]:
    """One turn with three writes outside the working folder, then an answer."""
    return [
        {
            "tool_calls": [
                {"name": "write_file", "arguments": {"path": f"{other}/new.txt", "content": "x"}},
                {
                    "name": "edit",
                    "arguments": {
                        "path": f"{other}/marker.txt",
                        "old_string": "original",
                        "new_string": "changed",
                    },
                },
                {"name": "bash", "arguments": {"command": f"echo pwned > {other}/marker.txt"}},
            ]
        },
        {"text": "done"},
    ]


def untouched(other: Path) -> bool:
    return (other / "marker.txt").read_text() == MARKER and not (other / "new.txt").exists()


def test_headless_writes_outside_the_workdir_are_denied(home, work, other, fake_llm):
    configure(home, fake_llm.url)
    fake_llm.script(writes_outside(other))
    out = result(vibe_run(home, work, "write outside"))
    assert [d["tool"] for d in out["permission_denials"]] == ["write_file", "edit", "bash"]
    assert untouched(other)
    tool_results = [m for m in fake_llm.requests[1].messages if m["role"] == "tool"]
    assert len(tool_results) == 3 and all("Denied" in m["content"] for m in tool_results)


def test_add_dir_lets_a_write_into_that_folder_run(home, work, other, fake_llm):
    configure(home, fake_llm.url)
    fake_llm.script(
        {
            "tool_calls": [
                {"name": "write_file", "arguments": {"path": f"{other}/new.txt", "content": "hi"}}
            ]
        },
        {"text": "done"},
    )
    out = result(vibe_run(home, work, "write there", "--add-dir", str(other), "--auto-approve"))
    assert out["permission_denials"] == []
    assert (other / "new.txt").read_text() == "hi"
    system = fake_llm.requests[0].messages[0]["content"]
    assert f"Additional folders you may work in: {other.resolve()}" in system


def test_outside_workdir_deny_holds_under_auto_approve(home, work, other, fake_llm):
    configure(home, fake_llm.url, extra='outside_workdir = "deny"\n')
    fake_llm.script(writes_outside(other))
    out = result(vibe_run(home, work, "write outside", "--auto-approve"))
    assert [d["tool"] for d in out["permission_denials"]] == ["write_file", "edit", "bash"]
    assert untouched(other)
    # The folder named by --add-dir is inside the boundary, even with "deny".
    fake_llm.script(
        {
            "tool_calls": [
                {"name": "write_file", "arguments": {"path": f"{other}/new.txt", "content": "ok"}}
            ]
        },
        {"text": "done"},
    )
    out = result(vibe_run(home, work, "write there", "--add-dir", str(other), "--auto-approve"))
    assert out["permission_denials"] == [] and (other / "new.txt").read_text() == "ok"


def test_without_auto_approve_add_dir_still_asks_like_the_workdir(home, work, other, fake_llm):
    configure(home, fake_llm.url)
    fake_llm.script(writes_outside(other))
    out = result(vibe_run(home, work, "write there", "--add-dir", str(other)))
    assert [d["tool"] for d in out["permission_denials"]] == ["write_file", "edit", "bash"]
    assert untouched(other)


def test_a_missing_add_dir_is_a_one_line_usage_error(home, work, tmp_path, fake_llm):
    configure(home, fake_llm.url)
    proc = vibe_run(home, work, "hi", "--add-dir", str(tmp_path / "missing"))
    assert proc.returncode == 1
    assert proc.stderr == f"error: --add-dir {tmp_path / 'missing'}: not a directory\n"
    assert fake_llm.requests == []
