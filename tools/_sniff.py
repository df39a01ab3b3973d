"""What a file holds, judged once from its first bytes: an image (png/jpg/gif/webp, by name or
magic bytes), other binary data, or text. read_file and the TUI's @mentions both ask here."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from tools._image import image_type
from tools._text import SNIFF_BYTES, looks_binary

Kind = Literal["text", "image", "binary"]


def sniff(path: Path) -> tuple[Kind, bytes]:
    """(kind, the first SNIFF_BYTES bytes) of the file at `path`; raises OSError."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if image_type(path, head[:16]) is not None:
        return "image", head
    return ("binary" if looks_binary(head) else "text"), head
