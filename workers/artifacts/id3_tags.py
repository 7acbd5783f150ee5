"""ID3v2.4 tags of a stored MP3, rendered with mutagen as bytes to write before the audio.

Text frames are UTF-8 (ID3v2.4 encoding 3), so CJK titles and lyrics survive intact.
Frames we own are replaced, others the upstream's own ID3v2 tag carried are kept.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from mutagen.id3 import APIC, ID3, TALB, TCON, TIT2, TPE1, TRCK, TXXX, USLT, PictureType

UTF8 = 3
# ISO 639-2 "undetermined": the upstream does not say which language its lyrics are in.
LYRICS_LANGUAGE = "und"
TXXX_JOB_ID = "songqueue job id"
TXXX_UPSTREAM_SONG_ID = "upstream song id"
TXXX_UPSTREAM_TASK_ID = "upstream task id"
# Room left in the tag for a later editor to retag in place. At least 133 zero bytes also
# matters to the rendering: mutagen looks for an ID3v1 tag in the last 133 bytes of the
# buffer it saves into, and must find none in our own frames.
PADDING = 1024


@dataclass(frozen=True)
class Cover:
    data: bytes
    mime: str


@dataclass(frozen=True)
class SongTags:
    title: str
    artist: str
    album: str
    track: int
    track_total: int
    job_id: str
    upstream_song_id: str
    upstream_task_id: str | None = None
    lyrics: str = ""
    genres: list[str] = field(default_factory=list)
    cover: Cover | None = None


def tag_bytes(upstream_tag: bytes, tags: SongTags) -> bytes:
    """The complete ID3v2.4 tag (header, frames, padding) for `tags`, merged into the
    upstream's own ID3v2 tag (`upstream_tag`, its bytes as served; empty when it had none).

    Raises mutagen's errors when `upstream_tag` does not parse.
    """
    id3 = ID3(io.BytesIO(upstream_tag)) if upstream_tag else ID3()
    id3.setall("TIT2", [TIT2(encoding=UTF8, text=tags.title)])
    id3.setall("TPE1", [TPE1(encoding=UTF8, text=tags.artist)])
    id3.setall("TALB", [TALB(encoding=UTF8, text=tags.album)])
    id3.setall("TRCK", [TRCK(encoding=UTF8, text=f"{tags.track}/{tags.track_total}")])
    id3.delall("USLT")
    if tags.lyrics:
        id3.add(USLT(encoding=UTF8, lang=LYRICS_LANGUAGE, desc="", text=tags.lyrics))
    id3.delall("TCON")
    if tags.genres:
        id3.add(TCON(encoding=UTF8, text=list(tags.genres)))  # ID3v2.4 keeps each value apart
    id3.delall("APIC")
    if tags.cover is not None:
        id3.add(APIC(encoding=UTF8, mime=tags.cover.mime, type=PictureType.COVER_FRONT, desc="cover",
                     data=tags.cover.data))
    for desc, value in ((TXXX_JOB_ID, tags.job_id), (TXXX_UPSTREAM_SONG_ID, tags.upstream_song_id),
                        (TXXX_UPSTREAM_TASK_ID, tags.upstream_task_id)):
        id3.delall(f"TXXX:{desc}")
        if value:
            id3.add(TXXX(encoding=UTF8, desc=desc, text=value))
    rendered = io.BytesIO()
    id3.save(rendered, v2_version=4, v1=0, padding=lambda info: PADDING)
    return rendered.getvalue()
