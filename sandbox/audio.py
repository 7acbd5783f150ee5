"""Real MP3 files for the sandbox: short melodies encoded with LAME.

The files must decode and their length must match the ``duration`` the fetch
answer reports, so the reported duration is measured with mutagen on the very
bytes that are served, never computed from the request.
"""

from __future__ import annotations

import io
import math
from array import array
from collections.abc import Iterator
from functools import lru_cache

import lameenc
import mutagen.mp3

SAMPLE_RATE = 44100
BITRATE_KBPS = 128
SAMPLES_PER_FRAME = 1152  # MPEG-1 Layer III
NOTE_SECONDS = 0.25
# A pentatonic tune per song index, so the two songs of a task differ audibly.
_MELODIES = {
    1: (523.25, 587.33, 659.25, 783.99, 880.00, 783.99, 659.25, 587.33),
    2: (392.00, 440.00, 523.25, 440.00, 329.63, 293.66, 329.63, 440.00),
}
_BYTES_PER_MIB = 1024 * 1024
_CLIP_SECONDS = 2.0


@lru_cache(maxsize=32)
def _note(freq: float) -> bytes:
    """One note as 16-bit mono PCM, faded in and out so notes do not click."""
    n = int(NOTE_SECONDS * SAMPLE_RATE)
    fade = int(0.01 * SAMPLE_RATE)
    pcm = array("h")
    for i in range(n):
        envelope = min(1.0, i / fade, (n - 1 - i) / fade)
        t = i / SAMPLE_RATE
        sample = math.sin(2 * math.pi * freq * t) + 0.3 * math.sin(4 * math.pi * freq * t)
        pcm.append(int(7000 * envelope * sample))
    return pcm.tobytes()


def _pcm(samples: int, index: int) -> bytes:
    melody = _MELODIES.get(index) or _MELODIES[1 + (index - 1) % len(_MELODIES)]
    out = bytearray()
    i = 0
    while len(out) < samples * 2:
        out += _note(melody[i % len(melody)])
        i += 1
    return bytes(out[: samples * 2])


def _encode(samples: int, index: int) -> bytes:
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(BITRATE_KBPS)
    encoder.set_in_sample_rate(SAMPLE_RATE)
    encoder.set_channels(1)
    encoder.set_quality(7)  # fast; quality is irrelevant for test tones
    return bytes(encoder.encode(_pcm(samples, index)) + encoder.flush())


def mp3_length(fileobj: io.IOBase | bytes) -> float:
    """The length mutagen reports, i.e. what a client that checks will see."""
    if isinstance(fileobj, (bytes, bytearray)):
        fileobj = io.BytesIO(fileobj)
    info = mutagen.mp3.MP3(fileobj=fileobj).info
    assert info is not None  # MP3() raises when it finds no MPEG frame
    return float(info.length)


@lru_cache(maxsize=64)
def song_mp3(duration: float, index: int) -> bytes:
    """MP3 bytes for song ``index`` whose measured length is ``duration`` to within a frame.

    LAME pads the start (encoder delay) and the end to whole frames, so the
    first encode comes out a frame or two long; one re-encode with fewer input
    samples brings the measured length to the nearest frame.
    """
    samples = max(1, round(duration * SAMPLE_RATE))
    data = _encode(samples, index)
    excess = mp3_length(data) - duration
    if excess > SAMPLES_PER_FRAME / SAMPLE_RATE / 2:
        data = _encode(max(1, samples - round(excess * SAMPLE_RATE)), index)
    return data


@lru_cache(maxsize=64)
def song_duration(duration: float, index: int) -> float:
    return mp3_length(song_mp3(duration, index))


def _frames(data: bytes) -> list[bytes]:
    """Split an MPEG-1/2 Layer III stream into frames, dropping Xing/Info frames.

    A Xing/Info frame carries the frame count of the clip; repeated (or even
    kept once) in a long stream it would make readers report the clip length,
    so it is dropped everywhere and readers estimate from the CBR size instead.
    """
    bitrates = {3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
                2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}
    rates = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
    frames: list[bytes] = []
    pos = 0
    while pos + 4 <= len(data):
        b1, b2 = data[pos + 1], data[pos + 2]
        if data[pos] != 0xFF or (b1 & 0xE0) != 0xE0:
            raise ValueError(f"lost MPEG frame sync at byte {pos}")
        version = (b1 >> 3) & 3
        bitrate = bitrates[3 if version == 3 else 2][b2 >> 4] * 1000
        rate = rates[version][(b2 >> 2) & 3]
        padding = (b2 >> 1) & 1
        size = (144 if version == 3 else 72) * bitrate // rate + padding
        frame = data[pos : pos + size]
        if len(frame) < size:
            break  # a cut last frame is not worth repeating
        if b"Xing" not in frame[:64] and b"Info" not in frame[:64]:
            frames.append(frame)
        pos += size
    return frames


class LargeMP3:
    """A long CBR MP3 made by repeating the frames of a short clip.

    Benchmarks need files of many megabytes; this object streams them clip by
    clip, so the server never holds more than one clip in memory.
    """

    def __init__(self, size_mb: float, index: int) -> None:
        frames = _frames(song_mp3(_CLIP_SECONDS, index))
        self.clip = b"".join(frames)
        target = max(1, math.ceil(size_mb * _BYTES_PER_MIB))
        self.repeats, rest = divmod(target, len(self.clip))
        # Finish on a frame boundary at or past the target size.
        tail = 0
        for frame in frames:
            if tail >= rest:
                break
            tail += len(frame)
        self.tail = tail
        self.size = self.repeats * len(self.clip) + tail
        self.duration = mp3_length(_VirtualFile(self))

    def read_at(self, pos: int, n: int) -> bytes:
        out = bytearray()
        clip_len = len(self.clip)
        while n > 0 and pos < self.size:
            offset = pos % clip_len
            piece = self.clip[offset : offset + min(n, clip_len - offset, self.size - pos)]
            out += piece
            pos += len(piece)
            n -= len(piece)
        return bytes(out)

    def chunks(self) -> Iterator[bytes]:
        for _ in range(self.repeats):
            yield self.clip
        if self.tail:
            yield self.clip[: self.tail]


class _VirtualFile(io.RawIOBase):
    """Read-only file view of a LargeMP3, so mutagen measures the real stream."""

    def __init__(self, mp3: LargeMP3) -> None:
        self._mp3 = mp3
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._mp3.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._mp3.read_at(self._pos, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


@lru_cache(maxsize=16)
def large_mp3(size_mb: float, index: int) -> LargeMP3:
    return LargeMP3(size_mb, index)
