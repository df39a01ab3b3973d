"""Rewind checkpoints of a session driven from an editor: `vibe acp` as a real subprocess (the ACP
SDK's client side speaks the wire format) against the loopback fake model server. Each prompt
turn begins a checkpoint as a TUI turn does, so the files its edits changed can be restored
later (e.g. after resuming the session in the TUI), and the session gets its title."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

acp = pytest.importorskip("acp")

from acp import spawn_agent_process, text_block  # noqa: E402
from acp.schema import ClientCapabilities  # noqa: E402

from tests.fakes.server import FakeLLMServer  # noqa: E402
from tests.fakes.vibe_proc import model_card, write_config  # noqa: E402
from vibe.rewind import Checkpoints  # noqa: E402
from vibe.session import Session, sessions_dir  # noqa: E402


class Editor:
    """An ACP client without file access (edits go to disk) that never grants a permission."""

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        pass

    async def request_permission(self, *_: Any, **__: Any) -> Any:  # pragma: no cover
        raise AssertionError("auto-approve mode must not ask")


def call(name: str, arguments: dict[str, Any], cid: str) -> dict[str, Any]:
    return {"name": name, "arguments": arguments, "id": cid}


def test_each_acp_prompt_turn_leaves_a_checkpoint_that_restores_its_files(env, work):
    asyncio.run(asyncio.wait_for(_two_turns(env, work.resolve()), 60))


async def _two_turns(env: dict[str, str], project: Path) -> None:
    (project / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    with FakeLLMServer(dialect="reasoning") as fake:
        write_config(env, model_card(fake.url, top="api_retry_max_elapsed_time = 0.5\n"))
        fake.script(
            {
                "tool_calls": [
                    call(
                        "edit",
                        {"path": "calc.py", "old_string": "a - b", "new_string": "a + b"},
                        "c1",
                    ),
                    call("write_file", {"path": "notes/todo.md", "content": "- tests\n"}, "c2"),
                ]
            },
            {"text": "Fixed add and wrote a note."},
            {"tool_calls": [call("write_file", {"path": "calc.py", "content": "# v3\n"}, "c3")]},
            {"text": "Rewrote calc.py."},
        )
        spawn = spawn_agent_process(
            Editor(), sys.executable, "-m", "vibe", "acp", env=env, cwd=project
        )
        async with spawn as (conn, _proc):
            await conn.initialize(protocol_version=1, client_capabilities=ClientCapabilities())
            sid = (await conn.new_session(cwd=str(project), mcp_servers=[])).session_id
            await conn.set_session_mode(session_id=sid, mode_id="auto-approve")
            first = await conn.prompt(session_id=sid, prompt=[text_block("fix add in calc.py")])
            assert first.stop_reason == "end_turn"
            second = await conn.prompt(session_id=sid, prompt=[text_block("now rewrite it")])
            assert second.stop_reason == "end_turn"
    assert (project / "calc.py").read_text() == "# v3\n"
    assert (project / "notes" / "todo.md").is_file()

    path = sessions_dir(Path(env["VIBE_HOME"])) / sid
    session = Session.load(path)
    users = [i for i, m in enumerate(session.messages) if m.role == "user"]
    checkpoints = Checkpoints(path, project)
    turns = checkpoints.turns()
    assert [(i, turns[i].text) for i in users] == [
        (users[0], "fix add in calc.py"),
        (users[1], "now rewrite it"),
    ]
    assert session.title == "fix add in calc.py"

    # Back to before the second prompt: calc.py as the first turn left it, the note stays.
    restored, problems = checkpoints.restore(users[1])
    assert problems == [] and restored == [project / "calc.py"]
    assert (project / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    # Back to before the first: calc.py as it was, and the note (a new file) gone.
    restored, problems = checkpoints.restore(users[0])
    assert problems == [] and len(restored) == 2
    assert (project / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
    assert not (project / "notes" / "todo.md").exists()
