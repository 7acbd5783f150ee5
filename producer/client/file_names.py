"""Readable file names that are safe on every common filesystem, built from upstream titles.

Titles are upstream text: they may hold slashes, control characters, bidi overrides,
Windows-reserved names or 300 bytes of CJK. What comes out keeps the title readable
("01 - Sandbox Song 1 – 晨光.mp3") and is one plain file name on Linux, macOS and Windows.
"""

from __future__ import annotations

import re
import unicodedata

# ext4, APFS and NTFS allow 255 bytes (or UTF-16 units) per name; stay well below so a
# collision suffix or a temporary ".part" still fits.
MAX_NAME_BYTES = 200
# Forbidden on Windows (and / everywhere); each becomes "_".
_FORBIDDEN = re.compile(r'[<>:"/\\|?*]')
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]}
)


def safe_file_name(stem: str, extension: str, fallback: str = "untitled") -> str:
    """`stem` made safe, plus `.extension`; at most MAX_NAME_BYTES bytes of UTF-8."""
    text = unicodedata.normalize("NFC", stem)
    # Control (Cc), format (Cf: bidi overrides, zero-width), separator (Zl, Zp) and
    # unassigned or private characters: unprintable, or able to disguise the name.
    text = "".join(" " if unicodedata.category(c) in ("Zl", "Zp") or c in "\t\n\r" else c for c in text)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cn", "Co", "Cs"))
    text = _FORBIDDEN.sub("_", text)
    text = " ".join(text.split())
    # Windows drops trailing dots and spaces; a leading dot hides the file elsewhere.
    text = text.strip(" .")
    if not text:
        text = fallback
    if text.split(".")[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        text = "_" + text
    suffix = f".{extension}" if extension else ""
    text = _cap_bytes(text, MAX_NAME_BYTES - len(suffix.encode("utf-8"))).rstrip(" .") or fallback
    return text + suffix


def numbered(name: str, n: int) -> str:
    """`name` with " (n)" before its extension: the n-th name tried after a collision."""
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    room = MAX_NAME_BYTES - len(f" ({n}).{extension}".encode())
    return f"{_cap_bytes(stem, room).rstrip(' .')} ({n}){dot}{extension}"


def _cap_bytes(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` bytes of UTF-8, never half a character."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")
