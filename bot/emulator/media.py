"""Files: identifiers, stored bytes and the Telegram objects that describe them."""

import secrets
import struct
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# Real file ids start with a base64 header naming the file type; keeping the
# prefixes makes ids in logs recognisable at a glance.
_ID_PREFIXES = {
    "photo": "AgACAgIAAxkBAAI",
    "document": "BQACAgIAAxkBAAI",
    "voice": "AwACAgIAAxkBAAI",
    "sticker": "CAACAgIAAxkBAAI",
    "video": "BAACAgIAAxkBAAI",
    "audio": "CQACAgIAAxkBAAI",
    "animation": "CgACAgIAAxkBAAI",
    "video_note": "DQACAgIAAxkBAAI",
}
_FOLDERS = {
    "photo": ("photos", "jpg"),
    "document": ("documents", "bin"),
    "voice": ("voice", "oga"),
    "sticker": ("stickers", "webp"),
    "video": ("videos", "mp4"),
    "audio": ("music", "mp3"),
    "animation": ("animations", "mp4"),
    "video_note": ("video_notes", "mp4"),
}
_DEFAULT_MIME = {
    "document": "application/octet-stream",
    "voice": "audio/ogg",
    "video": "video/mp4",
    "audio": "audio/mpeg",
    "animation": "video/mp4",
}
_PHOTO_BOXES = (90, 320, 800)
_LARGEST_PHOTO_BOX = 1280
_DEFAULT_PHOTO_SIZE = (1280, 960)
MEDIA_KINDS = tuple(_ID_PREFIXES)
# Stickers and video notes carry no caption; the other kinds take one.
CAPTIONED_KINDS = ("photo", "document", "voice", "video", "audio", "animation")
DOWNLOAD_LIMIT = 20 * 1024 * 1024


@dataclass
class StoredFile:
    """A file known to the emulator, with the bytes served for it."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    file_path: str | None = None

    def describe(self) -> dict[str, Any]:
        """The Telegram object (Document, Voice, ...) for this file."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            **self.meta,
        }


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG image, if recognisable."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        (segment_length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + segment_length
    return None


@lru_cache(maxsize=4)
def placeholder_png(width: int, height: int) -> bytes:
    """A valid single-colour PNG, served for photos injected without content."""
    row = b"\x00" + b"\x4a\x90\xd9" * width
    pixels = zlib.compress(row * height, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        checksum = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _scaled(width: int, height: int, box: int) -> tuple[int, int]:
    scale = box / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def photo_dimensions(width: int, height: int) -> list[tuple[int, int]]:
    """The sizes Telegram generates for a photo: thumbnails, then the largest."""
    sizes = [_scaled(width, height, box) for box in _PHOTO_BOXES if max(width, height) > box]
    if max(width, height) > _LARGEST_PHOTO_BOX:
        sizes.append(_scaled(width, height, _LARGEST_PHOTO_BOX))
    else:
        sizes.append((width, height))
    return sizes


class FileStore:
    """All files, by id and by download path."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}
        self._paths: dict[str, StoredFile] = {}
        self._photo_sets: dict[str, list[dict[str, Any]]] = {}
        self._path_counter = 0

    def get(self, file_id: str) -> StoredFile | None:
        """A file by id."""
        return self._files.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        """A file by the path getFile gave out."""
        return self._paths.get(file_path)

    def add(self, kind: str, data: bytes, meta: dict[str, Any] | None = None) -> StoredFile:
        """Store bytes as a new file of the given kind."""
        stored = StoredFile(
            file_id=_ID_PREFIXES[kind] + secrets.token_urlsafe(36),
            file_unique_id="AQAD" + secrets.token_urlsafe(9),
            kind=kind,
            data=data,
            meta=dict(meta or {}),
        )
        self._files[stored.file_id] = stored
        return stored

    def add_photo(self, data: bytes) -> list[dict[str, Any]]:
        """Store a photo; returns its PhotoSize list (all sizes serve the same bytes)."""
        width, height = image_size(data) or _DEFAULT_PHOTO_SIZE
        sizes = [
            self.add("photo", data, {"width": w, "height": h}).describe() for w, h in photo_dimensions(width, height)
        ]
        for size in sizes:
            self._photo_sets[size["file_id"]] = sizes
        return sizes

    def photo_set(self, file_id: str) -> list[dict[str, Any]] | None:
        """The PhotoSize list a photo file id belongs to."""
        return self._photo_sets.get(file_id)

    def assign_path(self, stored: StoredFile) -> str:
        """The download path of a file, created on first getFile as Telegram does."""
        if stored.file_path is None:
            folder, extension = _FOLDERS[stored.kind]
            name = str(stored.meta.get("file_name", ""))
            if "." in name:
                extension = name.rsplit(".", 1)[1]
            self._path_counter += 1
            stored.file_path = f"{folder}/file_{self._path_counter}.{extension}"
            self._paths[stored.file_path] = stored
        return stored.file_path


def default_meta(kind: str, data: bytes, options: dict[str, Any]) -> dict[str, Any]:
    """The descriptive fields of a new non-photo file, from request options."""
    meta: dict[str, Any] = {}
    mime_type = options.get("mime_type") or _DEFAULT_MIME.get(kind)
    if kind in ("document", "video", "audio", "animation") and options.get("file_name"):
        meta["file_name"] = options["file_name"]
    if kind == "sticker":
        width, height = image_size(data) or (512, 512)
        meta.update(type="regular", width=width, height=height, is_animated=False, is_video=False)
        meta["emoji"] = options.get("emoji") or "👍"
        return meta
    if kind == "video_note":
        # A round video: a square of `length` pixels, without a MIME type.
        return {"length": int(options.get("length") or 240), "duration": int(options.get("duration") or 3)}
    if mime_type:
        meta["mime_type"] = mime_type
    if kind in ("voice", "video", "audio", "animation"):
        meta["duration"] = int(options.get("duration") or 3)
    if kind in ("video", "animation"):
        meta["width"] = int(options.get("width") or 1280)
        meta["height"] = int(options.get("height") or 720)
    return meta


def media_fields(kind: str, media: Any) -> dict[str, Any]:
    """The message fields for a file of this kind: an animation is also its document, as the Bot API keeps it."""
    fields = {kind: media}
    if kind == "animation":
        fields["document"] = media
    return fields


def placeholder_bytes(kind: str) -> bytes:
    """Content for media injected by a test that gave none."""
    if kind == "photo":
        return placeholder_png(*_DEFAULT_PHOTO_SIZE)
    return f"emulated {kind} content".encode()
