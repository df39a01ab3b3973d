"""fs/read_text_file and fs/write_text_file: read_file, write_file and edit see and change the
editor's buffers (unsaved changes included) when the client offers the `fs` capability. A file
the editor cannot serve (binary, missing) falls back to the disk; the permission checks have
already run before a tool gets here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tools._text import SNIFF_BYTES, looks_binary
from tools.base import ToolError

log = logging.getLogger(__name__)


class ClientFiles:
    """tools.base.FileAccess over an ACP connection, for one session."""

    def __init__(self, conn: Any, session_id: str, *, read: bool, write: bool) -> None:
        self.conn, self.session_id = conn, session_id
        self.can_read, self.can_write = read, write

    async def read_text(self, path: Path) -> str | None:
        if not self.can_read or not _is_text_file(path):
            return None
        from acp import RequestError

        try:
            response = await self.conn.read_text_file(session_id=self.session_id, path=str(path))
        except RequestError as exc:  # not open there, or refused: the disk has the file
            log.info("fs/read_text_file %s failed (%s); reading the disk", path, exc)
            return None
        return response.content

    async def write_text(self, path: Path, content: str) -> bool:
        if not self.can_write:
            return False
        from acp import RequestError

        try:
            await self.conn.write_text_file(
                session_id=self.session_id, path=str(path), content=content
            )
        except RequestError as exc:
            raise ToolError(f"the editor could not write {path}: {exc}") from None
        return True


def _is_text_file(path: Path) -> bool:
    """An existing regular file that is not binary (images and the like stay on disk)."""
    try:
        if not path.is_file():
            return False
        with path.open("rb") as handle:
            return not looks_binary(handle.read(SNIFF_BYTES))
    except OSError:
        return False
