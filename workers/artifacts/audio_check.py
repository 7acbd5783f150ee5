"""Is a downloaded file the song the upstream described? MPEG audio of about that length.

Result URLs of this family break into placeholders, error pages and truncated files
(docs/upstream-contract.md, "What shapes the design"); the first bytes looking like MP3 is not enough, so the
file is parsed with mutagen before it may be stored. mutagen reads headers, not the audio:
the ID3 tag's, then the first MPEG frames' (sync, bitrate, sample rate, a Xing/VBRI/LAME
frame count when there is one), and takes the length from that count or, for constant
bitrate, from the file's size; a few hundred bytes of a 50 MiB file. A truncated body
never gets here: the download checks its length against Content-Length.
"""

from __future__ import annotations

from pathlib import Path

from mutagen import MutagenError
from mutagen.mp3 import MP3

from workers.upstream.errors import PermanentError


def check_mp3(path: Path, expected_duration: float | None, tolerance: float) -> float:
    """Return the file's length in seconds, or raise PermanentError saying what is wrong.

    `download_not_audio`: no MPEG audio stream in it. `duration_mismatch`: it plays
    more than `tolerance` seconds longer or shorter than `expected_duration` (not
    checked when the upstream gave none).
    """
    try:
        info = MP3(path).info
        if info is None:
            raise MutagenError("no MPEG audio stream")
        length = float(info.length)
    except MutagenError as exc:
        raise PermanentError("download_not_audio", f"the audio file does not parse as MPEG audio: {exc}") from exc
    if length <= 0:
        raise PermanentError("download_not_audio", "the audio file holds no playable MPEG frames")
    if expected_duration is not None and abs(length - expected_duration) > tolerance:
        raise PermanentError(
            "duration_mismatch",
            f"the MP3 plays {length:.2f}s but the upstream reported {expected_duration:.2f}s "
            f"(tolerance {tolerance:g}s: SONGQUEUE_DURATION_TOLERANCE)",
        )
    return length
