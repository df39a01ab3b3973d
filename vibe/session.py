"""Sessions: `$VIBE_HOME/sessions/<id>/` with meta.json (rewritten atomically) and an append-only
messages.jsonl. Each message is one write() before `append` returns, so a `kill -9` loses at most
the message in flight; an fsync follows every write on a background thread (power loss).

A process that writes a session holds an advisory lock on its `lock` file (flock, released on
close or exit), so two processes never interleave two conversations in one log: `Session.create`
takes it, `Session.load(..., lock=True)` takes it or raises SessionBusy (or waits).

A rewind is one line `{"rewind": {"to": N}}` in messages.jsonl: the log keeps every message,
and reading it keeps only the first N messages at that point (what the conversation was when
the user rewound). meta.json carries the session's `title` (its first message, or /rename)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vibe.agent.history import in_call_order
from vibe.config.secrets import redact
from vibe.config.trust import write_text_atomic
from vibe.errors import UsageError
from vibe.messages import Message

log = logging.getLogger(__name__)
# One thread: fsyncs run in order, off the event loop (an fsync can take milliseconds).
_FSYNC = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vibe-fsync")


REWIND = "rewind"  # the key of a rewind record in messages.jsonl
TITLE_CHARS = 60


def title_of(text: str) -> str:
    """The first non-empty line of `text`, at most TITLE_CHARS characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def new_session_id() -> str:
    """Time-sortable and unique: UTC timestamp, then random hex."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def sessions_dir(home: Path) -> Path:
    return home / "sessions"


class SessionBusy(UsageError):
    """Another live process holds the session's lock."""


def _take_lock(path: Path, *, wait: bool) -> int | None:
    """Lock `path/lock` for this process: its fd, or None when another process holds it."""
    fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _holder(path: Path) -> str:
    try:
        pid = (path / "lock").read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


@dataclass
class Session:
    """One conversation on disk. `messages` excludes the system prompt (rebuilt every run)."""

    id: str
    path: Path
    meta: dict[str, Any]
    messages: list[Message] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    _fd: int | None = field(default=None, repr=False)
    _pending: Future[None] | None = field(default=None, repr=False)
    _lock: int | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls, home: Path, cwd: Path, *, model: str = "", secrets: list[str] | None = None
    ) -> Session:
        sid = new_session_id()
        path = sessions_dir(home) / sid
        path.mkdir(parents=True, exist_ok=False)
        now = time.time()
        meta = {"id": sid, "cwd": str(cwd), "model": model, "created": now, "updated": now}
        session = cls(sid, path, meta, secrets=list(secrets or []))
        session._lock = _take_lock(path, wait=False)
        session.save_meta()
        return session

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        secrets: list[str] | None = None,
        lock: bool = False,
        wait: bool = False,
    ) -> Session:
        """Read a session; with `lock`, first take its lock (to write to it): SessionBusy when
        another process holds it, unless `wait`, which blocks until it is free."""
        fd = _take_lock(path, wait=wait) if lock and path.is_dir() else None
        if lock and fd is None and path.is_dir():
            raise SessionBusy(
                f"session {path.name} is in use by another vibe process{_holder(path)}"
            )
        try:
            try:
                meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UsageError(f"session {path.name} is unreadable: {exc}") from exc
            session = cls(meta.get("id", path.name), path, meta, secrets=list(secrets or []))
            session.messages = in_call_order(session._read_messages())
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        session._lock = fd
        return session

    @property
    def log_file(self) -> Path:
        return self.path / "messages.jsonl"

    def _read_messages(self) -> list[Message]:
        try:
            raw = self.log_file.read_bytes()
        except FileNotFoundError:
            return []
        lines = raw.split(b"\n")
        out: list[Message] = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if isinstance(data, dict) and REWIND in data:
                    del out[int(data[REWIND]["to"]) :]
                    continue
                out.append(Message.from_dict(data))
            except (ValueError, KeyError, TypeError):
                where = "last line" if n >= len(lines) - 1 else f"line {n}"
                warning = f"session {self.id}: skipped a torn {where} of messages.jsonl"
                self.warnings.append(warning)
                log.warning(warning)
        return out

    def append(self, message: Message, *, remember: bool = True) -> None:
        """Add one message: written before returning (survives kill -9), then fsynced.
        `remember=False` only writes it; the caller adds it to `messages` (in call order)."""
        if remember:
            self.messages.append(message)
        if message.role == "user" and not self.meta.get("title"):
            self.set_title(message.content)
        self._write_line(json.dumps(message.to_dict(), ensure_ascii=False))

    def rewind(self, keep: int) -> None:
        """Back to the first `keep` messages: recorded in the log (which keeps them all)."""
        keep = max(0, min(keep, len(self.messages)))
        self._write_line(json.dumps({REWIND: {"to": keep, "time": time.time()}}))
        del self.messages[keep:]

    def set_title(self, text: str) -> None:
        """The session's title: the first line of `text`, shortened (the /resume picker)."""
        title = title_of(text)
        if title:
            self.save_meta(title=title)

    @property
    def title(self) -> str:
        return str(self.meta.get("title") or "")

    def _write_line(self, line: str) -> None:
        data = redact(line, self.secrets).encode("utf-8") + b"\n"
        if self._fd is None:
            # O_APPEND so each message is one write at the end, even after a torn line.
            self._fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if self._ends_torn():
                data = b"\n" + data
        os.write(self._fd, data)
        self._pending = _FSYNC.submit(os.fsync, self._fd)

    def _ends_torn(self) -> bool:
        """True when the file ends in a torn line (no newline) that must not swallow ours."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size == 0:
            return False
        with open(self.log_file, "rb") as fh:
            fh.seek(size - 1)
            return fh.read(1) != b"\n"

    def sync(self) -> None:
        """Wait until every appended message is on disk."""
        if self._pending is not None:
            self._pending.result()

    def close(self) -> None:
        """Flush, close the log and release the lock."""
        self.sync()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def save_meta(self, **updates: Any) -> None:
        """Update meta.json atomically (temp file + rename)."""
        self.meta.update(updates, updated=time.time())
        body = redact(json.dumps(self.meta, indent=2, ensure_ascii=False), self.secrets)
        write_text_atomic(self.path / "meta.json", body)


def list_sessions(home: Path) -> list[Path]:
    """Session folders, newest first (ids sort by time)."""
    root = sessions_dir(home)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if (p / "meta.json").is_file()), reverse=True)


@dataclass(frozen=True)
class SessionInfo:
    """One saved session, as the /resume picker shows it."""

    path: Path
    id: str
    title: str
    model: str
    updated: float
    meta: dict[str, Any]


def read_meta(path: Path) -> dict[str, Any] | None:
    """A session folder's meta.json, or None when it cannot be read."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def sessions_in(cwd: Path, home: Path) -> list[SessionInfo]:
    """Every session started in `cwd` that has messages, the last used first."""
    target = str(cwd.resolve())
    out: list[SessionInfo] = []
    for path in list_sessions(home):
        meta = read_meta(path)
        if meta is None or meta.get("cwd") != target or not (path / "messages.jsonl").is_file():
            continue
        title = str(meta.get("title") or "") or first_user_line(path)
        updated = float(meta.get("updated") or meta.get("created") or 0.0)
        sid = str(meta.get("id") or path.name)
        out.append(SessionInfo(path, sid, title, str(meta.get("model") or ""), updated, meta))
    return sorted(out, key=lambda info: info.updated, reverse=True)


def first_user_line(path: Path) -> str:
    """The title of a session saved before titles existed: its first user message."""
    try:
        with (path / "messages.jsonl").open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if isinstance(data, dict) and data.get("role") == "user":
                    return title_of(str(data.get("content") or ""))
    except OSError:
        pass
    return ""


def latest_path(cwd: Path, home: Path) -> Path | None:
    """The folder of the most recent session started in `cwd` (for --continue)."""
    target = str(cwd.resolve())
    for path in list_sessions(home):
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("cwd") == target:
            return path
    return None


def latest_for(cwd: Path, home: Path, *, secrets: list[str] | None = None) -> Session | None:
    """The most recent session started in `cwd`, read without its lock."""
    path = latest_path(cwd, home)
    return None if path is None else Session.load(path, secrets=secrets)


def find(prefix: str, home: Path, *, secrets: list[str] | None = None) -> Session:
    """The session whose id starts with `prefix`, read without its lock."""
    return Session.load(find_path(prefix, home), secrets=secrets)


def find_path(prefix: str, home: Path) -> Path:
    """The folder of the session whose id starts with `prefix` (for --resume); UsageError if
    none or several."""
    prefix = prefix.strip()
    if not prefix or "/" in prefix or prefix.startswith("."):
        raise UsageError(f"invalid session id {prefix!r}")
    matches = [p for p in list_sessions(home) if p.name.startswith(prefix)]
    if not matches:
        raise UsageError(f"no session matches {prefix!r} in {sessions_dir(home)}")
    if len(matches) > 1:
        shown = ", ".join(p.name for p in matches[:5])
        raise UsageError(f"session id {prefix!r} is ambiguous: {shown}")
    return matches[0]
