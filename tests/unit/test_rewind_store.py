"""vibe.rewind (pre-images per user message) and the rewind record of vibe.session."""

from __future__ import annotations

import json

from vibe.messages import Message
from vibe.rewind import Checkpoints
from vibe.session import Session, sessions_in, title_of


def test_pre_images_are_kept_per_message_and_restored(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("v0")
    cp = Checkpoints(tmp_path / "session", work)
    cp.before_write("write_file", {"path": "a.txt"})  # no message yet: nothing kept
    cp.begin(0, "first")
    cp.before_write("write_file", {"path": "a.txt"})
    (work / "a.txt").write_text("v1")
    cp.before_write("edit", {"path": "a.txt"})  # same message: the first pre-image stays
    (work / "a.txt").write_text("v1b")
    cp.before_write("bash", {"command": "rm a.txt"})  # not tracked
    cp.begin(4, "second")
    cp.before_write("edit", {"path": str(work / "a.txt")})
    (work / "a.txt").write_text("v2")
    cp.before_write("write_file", {"path": "new/b.txt"})
    (work / "new").mkdir()
    (work / "new" / "b.txt").write_text("b")

    assert {i: t.text for i, t in cp.turns().items()} == {0: "first", 4: "second"}
    assert [p.path.name for p in cp.changed_since(4)] == ["a.txt", "b.txt"]
    restored, problems = cp.restore(4)
    assert problems == [] and len(restored) == 2
    assert (work / "a.txt").read_text() == "v1b" and not (work / "new" / "b.txt").exists()
    restored, _ = cp.restore(0)
    assert (work / "a.txt").read_text() == "v0"
    cp.drop_from(4)
    assert list(cp.turns()) == [0]


def test_a_rewind_is_recorded_and_read_back(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    session = Session.create(home, work, model="m")
    for role, text in [("user", "one"), ("assistant", "1"), ("user", "two"), ("assistant", "2")]:
        session.append(Message(role, text))
    session.rewind(2)
    session.append(Message("user", "three"))
    session.close()
    assert [m.content for m in session.messages] == ["one", "1", "three"]
    lines = session.log_file.read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[4])["rewind"]["to"] == 2
    loaded = Session.load(session.path)
    assert [m.content for m in loaded.messages] == ["one", "1", "three"]
    assert loaded.title == "one"
    assert [i.title for i in sessions_in(work, home)] == ["one"]


def test_titles_are_the_first_line_shortened():
    assert title_of("\n  fix it  \nmore") == "fix it"
    assert len(title_of("x" * 200)) == 60 and title_of("x" * 200).endswith("…")
