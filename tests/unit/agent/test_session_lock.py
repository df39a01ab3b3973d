"""The per-session advisory lock: one writer per session, released on close and on exit."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from vibe.session import Session, SessionBusy, find_path, latest_path


def test_a_new_session_is_locked_until_closed(tmp_path):
    session = Session.create(tmp_path, tmp_path)
    with pytest.raises(SessionBusy, match=r"in use by another vibe process \(pid \d+\)"):
        Session.load(session.path, lock=True)
    assert Session.load(session.path).id == session.id  # reading needs no lock
    session.close()
    again = Session.load(session.path, lock=True)
    with pytest.raises(SessionBusy):
        Session.load(session.path, lock=True)
    again.close()


def test_wait_blocks_until_the_holder_closes(tmp_path):
    holder = Session.create(tmp_path, tmp_path)
    threading.Timer(0.3, holder.close).start()
    started = time.monotonic()
    waiter = Session.load(holder.path, lock=True, wait=True)
    assert time.monotonic() - started >= 0.25
    waiter.close()


def test_the_lock_dies_with_its_process(tmp_path):
    session = Session.create(tmp_path, tmp_path)
    session.close()
    code = (
        "import sys, time; from pathlib import Path; from vibe.session import Session; "
        "s = Session.load(Path(sys.argv[1]), lock=True); print('locked', flush=True); "
        "time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(session.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(SessionBusy, match=f"pid {child.pid}"):
            Session.load(session.path, lock=True)
    finally:
        child.kill()
        child.wait()
    Session.load(session.path, lock=True).close()  # kill -9 released it


def test_paths_for_continue_and_resume(tmp_path):
    (tmp_path / "here").mkdir()
    session = Session.create(tmp_path / "home", tmp_path / "here")
    assert latest_path(tmp_path / "here", tmp_path / "home") == session.path
    assert latest_path(tmp_path, tmp_path / "home") is None
    assert find_path(session.id[:17], tmp_path / "home") == session.path
