"""History repair (every call exactly one result, orphans dropped) and session durability
(fsynced JSONL, torn last line skipped with a warning, --continue / --resume lookup)."""

from __future__ import annotations

import json

import pytest

from vibe.agent.history import CANCELLED, is_valid, repair
from vibe.errors import UsageError
from vibe.messages import Message, ToolCall
from vibe.session import Session, find, latest_for, new_session_id

SYS = Message("system", "sys")
USER = Message("user", "hi")


def _assistant(*ids: str) -> Message:
    return Message("assistant", "", tool_calls=[ToolCall(i, "bash", "{}") for i in ids])


def _result(call_id: str, text: str = "ok") -> Message:
    return Message("tool", text, tool_call_id=call_id, name="bash")


def test_valid_history_is_returned_as_is():
    msgs = [SYS, USER, _assistant("a", "b"), _result("a"), _result("b"), Message("assistant", "x")]
    assert repair(msgs) is msgs


def test_missing_results_are_filled_in_call_order():
    msgs = [SYS, USER, _assistant("a", "b"), _result("b"), Message("user", "next")]
    fixed = repair(msgs)
    assert [(m.role, m.tool_call_id) for m in fixed[2:5]] == [
        ("assistant", None),
        ("tool", "a"),
        ("tool", "b"),
    ]
    assert fixed[3].content == CANCELLED and fixed[4].content == "ok"
    assert is_valid(fixed)


def test_orphans_duplicates_and_empty_messages_are_dropped():
    msgs = [
        SYS,
        _result("zzz"),
        USER,
        Message("assistant", ""),
        _assistant("a"),
        _result("a", "first"),
        _result("a", "second"),
        _result("other"),
        SYS,
    ]
    fixed = repair(msgs)
    assert [m.role for m in fixed] == ["system", "user", "assistant", "tool"]
    assert fixed[3].content == "first"


def test_consecutive_user_messages_are_merged():
    fixed = repair([SYS, USER, Message("user", "again")])
    assert [m.role for m in fixed] == ["system", "user"] and fixed[1].content == "hi\n\nagain"


def test_session_round_trip_and_meta(tmp_path):
    s = Session.create(tmp_path, tmp_path / "proj", model="m")
    s.append(USER)
    s.append(_assistant("a"))
    s.append(_result("a"))
    s.save_meta(cost_usd=0.5)
    loaded = Session.load(s.path)
    assert [m.to_dict() for m in loaded.messages] == [m.to_dict() for m in s.messages]
    assert loaded.meta["cost_usd"] == 0.5 and loaded.warnings == []


def test_torn_last_line_is_skipped_with_a_warning_and_appends_still_work(tmp_path):
    s = Session.create(tmp_path, tmp_path)
    s.append(USER)
    s.append(Message("assistant", "complete"))
    with open(s.log_file, "ab") as fh:  # what kill -9 in the middle of a write leaves
        fh.write(b'{"role": "assistant", "content": "half wr')
    loaded = Session.load(s.path)
    assert [m.content for m in loaded.messages] == ["hi", "complete"]
    assert len(loaded.warnings) == 1 and "torn last line" in loaded.warnings[0]
    loaded.append(Message("user", "after the crash"))
    again = Session.load(s.path)
    assert [m.content for m in again.messages] == ["hi", "complete", "after the crash"]


def test_secrets_are_redacted_on_disk(tmp_path):
    s = Session.create(tmp_path, tmp_path, secrets=["sk-very-secret-key"])
    s.append(Message("user", "my key is sk-very-secret-key"))
    assert "sk-very-secret-key" not in s.log_file.read_text()
    assert "***" in s.log_file.read_text()


def test_ids_sort_by_time_and_latest_for_picks_this_folder(tmp_path):
    assert new_session_id() != new_session_id()
    a = Session.create(tmp_path, tmp_path / "one")
    b = Session.create(tmp_path, tmp_path / "two")
    meta = json.loads((a.path / "meta.json").read_text())
    assert meta["cwd"] == str(tmp_path / "one")
    assert latest_for(tmp_path / "one", tmp_path).id == a.id
    assert latest_for(tmp_path / "two", tmp_path).id == b.id
    assert latest_for(tmp_path / "three", tmp_path) is None


def test_find_by_prefix(tmp_path):
    a = Session.create(tmp_path, tmp_path)
    assert find(a.id, tmp_path).id == a.id
    with pytest.raises(UsageError, match="no session"):
        find("1999", tmp_path)
    Session.create(tmp_path, tmp_path)
    with pytest.raises(UsageError, match="ambiguous"):
        find(a.id[:4], tmp_path)
    with pytest.raises(UsageError, match="invalid"):
        find("../x", tmp_path)
