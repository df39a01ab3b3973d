"""Image files for models that see images: recognise png/jpg/gif/webp, scale them down to what
the APIs take (pillow) and encode them as base64 for a `data:` URL.

Limits: Mistral's API takes images up to 10 MB (png, jpeg, webp, single-frame gif) and scales
down anything larger than its model's 1540 px; OpenAI-compatible servers scale to 2048 px. We
send at most MAX_SIDE px on the longer side and at most MAX_BYTES of encoded data, so a
screenshot costs what the model can use and no request is refused for its size."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
MAX_SIDE = 1540
MAX_BYTES = 4 * 1024 * 1024  # of the encoded image (base64 adds a third on the wire)
MAX_FILE_BYTES = 50 * 1024 * 1024  # larger files are not opened at all
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class ImageFileError(ValueError):
    """The file is not an image we can read (corrupt, too large, unknown format)."""


@dataclass(frozen=True)
class ImagePayload:
    """An image ready for the wire: `data` is base64 of `mime_type` bytes."""

    name: str
    mime_type: str
    data: str
    width: int
    height: int
    original_width: int
    original_height: int
    file_bytes: int

    @property
    def scaled(self) -> bool:
        return (self.width, self.height) != (self.original_width, self.original_height)

    def describe(self) -> str:
        size = f"{self.width}x{self.height}"
        if self.scaled:
            size += f", scaled down from {self.original_width}x{self.original_height}"
        return f"{self.name} ({self.mime_type}, {size})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mime_type": self.mime_type,
            "data": self.data,
            "width": self.width,
            "height": self.height,
        }


def image_type(path: Path, head: bytes = b"") -> str | None:
    """The MIME type when `path` is a png/jpg/gif/webp (by name, or by its first bytes)."""
    mime = IMAGE_TYPES.get(path.suffix.lower())
    if mime:
        return mime
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def load_image(path: Path, name: str | None = None) -> ImagePayload:
    """Read and, where needed, scale down and re-encode the image at `path`."""
    shown = name or path.name
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImageFileError(f"{shown} is too large to attach ({size:,} bytes)")
    return load_image_bytes(path.read_bytes(), shown)


def load_image_bytes(raw: bytes, shown: str) -> ImagePayload:
    """The image in `raw` (e.g. an MCP tool's), scaled down and re-encoded where needed."""
    from PIL import Image, UnidentifiedImageError

    size = len(raw)
    if size > MAX_FILE_BYTES:
        raise ImageFileError(f"{shown} is too large to attach ({size:,} bytes)")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            fmt = (img.format or "").upper()
            width, height = img.size
            animated = bool(getattr(img, "is_animated", False))
            if (
                fmt in ("PNG", "JPEG", "WEBP", "GIF")
                and not animated
                and _fits(width, height, len(raw))
            ):
                mime = f"image/{fmt.lower()}"
                return _payload(shown, mime, raw, (width, height), (width, height), size)
            out, mime, dims = _shrink(img)
    except UnidentifiedImageError:
        raise ImageFileError(f"{shown} is not a readable image (unknown or corrupt data)") from None
    except (OSError, Image.DecompressionBombError, ValueError) as exc:
        raise ImageFileError(f"{shown} is not a readable image ({exc})") from None
    return _payload(shown, mime, out, dims, (width, height), size)


def _fits(width: int, height: int, size: int) -> bool:
    return max(width, height) <= MAX_SIDE and size <= MAX_BYTES


def _shrink(img: Any) -> tuple[bytes, str, tuple[int, int]]:
    """The first frame, at most MAX_SIDE px, under MAX_BYTES: PNG for lossless sources
    (screenshots keep sharp text), JPEG for photos and where a PNG stays too large."""
    from PIL import Image

    img.seek(0)
    lossless = (img.format or "").upper() != "JPEG"
    frame = img.copy()
    frame.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
    while True:
        for kind in ("PNG", "JPEG") if lossless or alpha else ("JPEG",):
            buf = io.BytesIO()
            if kind == "PNG":
                frame.convert("RGBA" if alpha else "RGB").save(buf, "PNG", optimize=True)
            else:
                frame.convert("RGB").save(buf, "JPEG", quality=85)
            data = buf.getvalue()
            if len(data) <= MAX_BYTES:
                return data, f"image/{kind.lower()}", frame.size
        if max(frame.size) <= 256:
            return data, f"image/{kind.lower()}", frame.size
        frame.thumbnail((max(frame.size) * 3 // 4,) * 2, Image.Resampling.LANCZOS)


def _payload(
    name: str, mime: str, data: bytes, dims: tuple[int, int], orig: tuple[int, int], size: int
) -> ImagePayload:
    return ImagePayload(
        name=name,
        mime_type=mime,
        data=base64.b64encode(data).decode("ascii"),
        width=dims[0],
        height=dims[1],
        original_width=orig[0],
        original_height=orig[1],
        file_bytes=size,
    )
