"""`vibe acp` as a real subprocess, driven by the ACP SDK's client side (the editor) against the
loopback fake model server: a fix-the-failing-test task with one approval granted and one
rejected, fs delegation (the editor's unsaved buffer is what the agent reads and edits),
the todo list as a plan, mode switches (auto-approve, the model card's mode), a cancel
mid-stream, session/load replaying the history, and malformed requests."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

acp = pytest.importorskip("acp")

from acp import RequestError, spawn_agent_process, text_block  # noqa: E402
from acp.schema import (  # noqa: E402
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    ReadTextFileResponse,
    RequestPermissionResponse,
    WriteTextFileResponse,
)

from tests.fakes.server import FakeLLMServer  # noqa: E402
from tests.fakes.vibe_proc import model_card, write_config  # noqa: E402

CARD_MODE = "mistral-medium-3-5-local-vllm"  # the model card's top-level mode (slug)
BUGGY = "def add(a, b):\n    return a - b\n"
BUFFER = "# unsaved change in the editor\ndef add(a, b):\n    return a - b\n"


class Editor:
    """The ACP client: records updates, answers permission requests from a queue, serves
    unsaved buffers for fs/read_text_file and keeps fs/write_text_file in them."""

    def __init__(self) -> None:
        self.updates: list[Any] = []
        self.answers: list[str] = []  # option ids, in order; empty: cancelled
        self.permissions: list[Any] = []
        self.buffers: dict[str, str] = {}
        self.reads: list[str] = []
        self.writes: list[tuple[str, str]] = []
        self.first_chunk = asyncio.Event()

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append(update)
        if update.session_update == "agent_message_chunk":
            self.first_chunk.set()

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **_: Any
    ):
        self.permissions.append((tool_call, options))
        if not self.answers:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        choice = self.answers.pop(0)
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=choice)
        )

    async def read_text_file(self, session_id: str, path: str, **_: Any) -> ReadTextFileResponse:
        self.reads.append(path)
        if path in self.buffers:
            return ReadTextFileResponse(content=self.buffers[path])
        return ReadTextFileResponse(content=Path(path).read_text())

    async def write_text_file(self, session_id: str, path: str, content: str, **_: Any):
        self.writes.append((path, content))
        self.buffers[path] = content
        return WriteTextFileResponse()

    def of(self, kind: str) -> list[Any]:
        return [u for u in self.updates if u.session_update == kind]


@pytest.fixture
def project(work: Path) -> Path:
    d = work
    (d / "calc.py").write_text(BUGGY)
    (d / "test_calc.py").write_text("from calc import add\nassert add(2, 2) == 4\n")
    return d.resolve()


def configure(env: dict[str, str], url: str) -> None:
    top = "api_retry_max_elapsed_time = 0.5\napi_read_timeout = 10\n"
    write_config(env, model_card(url, top=top))


def call(name: str, arguments: dict[str, Any], cid: str) -> dict[str, Any]:
    return {"name": name, "arguments": arguments, "id": cid}


async def connect(editor: Editor, env: dict[str, str], cwd: Path):
    return spawn_agent_process(editor, sys.executable, "-m", "vibe", "acp", env=env, cwd=cwd)


async def initialize(conn: Any) -> Any:
    caps = ClientCapabilities(fs=FileSystemCapabilities(read_text_file=True, write_text_file=True))
    return await conn.initialize(protocol_version=1, client_capabilities=caps)


def test_acp_session_end_to_end(env, project):
    asyncio.run(asyncio.wait_for(_session_then_load(env, project), 60))


async def _session_then_load(env: dict[str, str], project: Path) -> None:
    calc = str(project / "calc.py")
    with FakeLLMServer(dialect="reasoning") as fake:
        configure(env, fake.url)
        editor = Editor()
        editor.buffers[calc] = BUFFER
        async with await connect(editor, env, project) as (conn, proc):
            init = await initialize(conn)
            assert init.agent_capabilities.load_session is True
            assert init.agent_capabilities.mcp_capabilities.http is True
            new = await conn.new_session(cwd=str(project), mcp_servers=[])
            sid = new.session_id
            assert new.modes.current_mode_id == CARD_MODE
            assert {"default", "plan", "auto-approve", CARD_MODE} <= {
                m.id for m in new.modes.available_modes
            }
            model_option = next(o for o in new.config_options if o.id == "model")
            assert model_option.current_value == "mistral-medium-3.5"

            # 1. Fix the failing test: read (the buffer), edit (allowed), run it (rejected), plan.
            fake.script(
                {
                    "reasoning": "Look at calc.py first.",
                    "tool_calls": [call("read_file", {"path": "calc.py"}, "c1")],
                },
                {
                    "tool_calls": [
                        call(
                            "edit",
                            {"path": "calc.py", "old_string": "a - b", "new_string": "a + b"},
                            "c2",
                        )
                    ]
                },
                {"tool_calls": [call("bash", {"command": "python3 test_calc.py"}, "c3")]},
                {
                    "tool_calls": [
                        call(
                            "todo",
                            {
                                "todos": [
                                    {"content": "Fix add", "status": "completed"},
                                    {"content": "Run the tests", "status": "pending"},
                                ]
                            },
                            "c4",
                        )
                    ]
                },
                {"text": "Fixed add(); run the tests to confirm."},
            )
            editor.answers = ["allow_once", "reject_once"]
            done = await conn.prompt(session_id=sid, prompt=[text_block("Fix the failing test")])
            assert done.stop_reason == "end_turn"
            thoughts = "".join(u.content.text for u in editor.of("agent_thought_chunk"))
            assert "Look at calc.py first." in thoughts
            text = "".join(u.content.text for u in editor.of("agent_message_chunk"))
            assert text == "Fixed add(); run the tests to confirm."
            starts = {u.tool_call_id: u for u in editor.of("tool_call")}
            assert starts["c1"].kind == "read" and starts["c1"].locations[0].path == calc
            assert starts["c2"].kind == "edit" and starts["c3"].kind == "execute"
            diff = starts["c2"].content[0]
            assert (diff.type, diff.path, diff.old_text, diff.new_text) == (
                "diff",
                calc,
                "a - b",
                "a + b",
            )
            assert "python3 test_calc.py" in starts["c3"].content[0].content.text
            final = {
                u.tool_call_id: u.status
                for u in editor.of("tool_call_update")
                if u.status in ("completed", "failed")
            }
            assert final == {
                "c1": "completed",
                "c2": "completed",
                "c3": "failed",
                "c4": "completed",
            }
            # fs delegation: the model read the unsaved buffer; the edit landed in the editor.
            assert "unsaved change in the editor" in fake.requests[1].messages[-1]["content"]
            assert editor.writes == [(calc, BUFFER.replace("a - b", "a + b"))]
            assert (project / "calc.py").read_text() == BUGGY, "the disk is the editor's to save"
            # Permissions: asked twice, with the four choices; the rejection reached the model.
            assert [p[0].tool_call_id for p in editor.permissions] == ["c2", "c3"]
            kinds = [o.kind for o in editor.permissions[0][1]]
            assert kinds == ["allow_once", "allow_always", "allow_always", "reject_once"]
            assert "Denied" in fake.requests[3].messages[-1]["content"]
            plan = editor.of("plan")[-1]
            assert [(e.content, e.status) for e in plan.entries] == [
                ("Fix add", "completed"),
                ("Run the tests", "pending"),
            ]

            # 2. Modes: auto-approve runs bash without asking; back to the model card's mode.
            await conn.set_session_mode(session_id=sid, mode_id="auto-approve")
            fake.script(
                {"tool_calls": [call("bash", {"command": "python3 test_calc.py"}, "c5")]},
                {"text": "ran"},
            )
            asked = len(editor.permissions)
            done = await conn.prompt(session_id=sid, prompt=[text_block("run the tests")])
            assert done.stop_reason == "end_turn" and len(editor.permissions) == asked
            assert "AssertionError" in fake.requests[-1].messages[-1]["content"]  # disk still buggy
            await conn.set_session_mode(session_id=sid, mode_id=CARD_MODE)
            option = await conn.set_config_option(session_id=sid, config_id="mode", value=CARD_MODE)
            assert (
                next(o for o in option.config_options if o.id == "mode").current_value == CARD_MODE
            )

            # 3. Cancel mid-stream.
            fake.script({"text": "word " * 200, "slow": 0.05})
            editor.first_chunk.clear()
            turn = asyncio.ensure_future(conn.prompt(session_id=sid, prompt=[text_block("talk")]))
            await asyncio.wait_for(editor.first_chunk.wait(), 10)
            await conn.cancel(session_id=sid)
            assert (await asyncio.wait_for(turn, 10)).stop_reason == "cancelled"

            # 4. Malformed requests: clear JSON-RPC errors, and the server keeps serving.
            with pytest.raises(RequestError) as err:
                await conn.prompt(session_id="nope", prompt=[text_block("hi")])
            assert err.value.code == -32602 and "unknown session" in str(err.value.data)
            with pytest.raises(RequestError) as err:
                await conn.new_session(cwd="relative/dir", mcp_servers=[])
            assert "absolute" in str(err.value)
            with pytest.raises(RequestError) as err:
                await conn.set_session_mode(session_id=sid, mode_id="warp-speed")
            assert "unknown mode 'warp-speed'" in str(err.value.data)
            with pytest.raises(RequestError) as err:
                await conn._conn.send_request("session/prompt", {"sessionId": sid})  # no prompt
            assert err.value.code == -32602
            with pytest.raises(RequestError) as err:
                await conn._conn.send_request("vibe/teleport", {})
            assert err.value.code == -32601
            proc.stdin.write(b"this is not json\n")
            listed = await conn.list_sessions(cwd=str(project))
            assert [s.session_id for s in listed.sessions] == [sid]

        log = (Path(env["VIBE_HOME"]) / "logs" / "vibe.log").read_text()
        assert f"session/new {sid}" in log and "Error parsing JSON-RPC message" in log

        # 5. A new process resumes the session: the history is replayed before the response.
        replayer = Editor()
        async with await connect(replayer, env, project) as (conn, proc):
            await initialize(conn)
            loaded = await conn.load_session(cwd=str(project), session_id=sid, mcp_servers=[])
            assert loaded.modes.current_mode_id == CARD_MODE
            users = [u.content.text for u in replayer.of("user_message_chunk")]
            assert users[:2] == ["Fix the failing test", "run the tests"]
            said = "".join(u.content.text for u in replayer.of("agent_message_chunk"))
            assert "Fixed add(); run the tests to confirm." in said
            replayed = {u.tool_call_id: u for u in replayer.of("tool_call")}
            assert replayed["c2"].content[0].new_text == "a + b"
            assert replayer.of("plan")[-1].entries[0].content == "Fix add"
            fake.script({"text": "still here"})
            done = await conn.prompt(session_id=sid, prompt=[text_block("are you there?")])
            assert done.stop_reason == "end_turn"
            sent = [m["content"] for m in fake.requests[-1].messages if m["role"] == "user"]
            assert sent[0] == "Fix the failing test" and sent[-1] == "are you there?"
