"""Recognise media from its first bytes; upstream URLs and headers are not trusted for it."""

from __future__ import annotations

IMAGE_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
    (b"GIF87a", "gif", "image/gif"),
    (b"GIF89a", "gif", "image/gif"),
)


def sniff_image(head: bytes) -> tuple[str | None, str]:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "image/webp"
    for magic, extension, content_type in IMAGE_SIGNATURES:
        if head.startswith(magic):
            return extension, content_type
    return None, "application/octet-stream"


def sniff_audio(head: bytes) -> tuple[str | None, str]:
    """MP3: an ID3v2 tag or an MPEG audio frame sync at the start."""
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3", "audio/mpeg"
    return None, "application/octet-stream"
