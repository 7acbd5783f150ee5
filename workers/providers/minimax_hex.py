"""MiniMax's hex answer decoded as it arrives, straight into a spool file.

A hex answer is a JSON object twice the size of the song: `{"data": {"audio": "<hex>",
"status": 2}, "extra_info": {...}, "base_resp": {...}}`, keys in any order. Holding it
whole (then `bytes.fromhex`) costs about three times the song in memory per worker.
`HexAudioSink` is fed the body chunk by chunk: a small JSON scanner follows the object's
nesting, and the one string at `data.audio`, when it is hex, is decoded into a spool file
(sha256 and size on the way, the cap on decoded bytes) and left out of the rest of the
body, which is small and parsed with `json` afterwards. A URL answer, or anything not
hex at its start, stays in the rest and is judged by `parse_generation` as before.

Every refusal here is of a billed answer (the call succeeded), so each carries
`maybe_accepted`: the job is charged (see workers/tasks/submit.py).
"""

from __future__ import annotations

import binascii
import hashlib
import tempfile
from pathlib import Path

from workers.providers.base import InlineAudio
from workers.upstream.errors import PermanentError

_HEX = frozenset(b"0123456789abcdefABCDEF")
_WHITESPACE = b" \t\r\n"
# This many leading characters decide hex (stream it) or not (keep it as text).
_DECIDE = 8
_HEAD = 16


class HexAudioSink:
    """Feed it the body's chunks (`feed`), then `finish` gives the body without the hex."""

    def __init__(self, *, max_audio_bytes: int, max_rest_bytes: int, spool_dir: str | None = None) -> None:
        self.max_audio_bytes = max_audio_bytes
        self.max_rest_bytes = max_rest_bytes
        self.spool_dir = spool_dir
        self.audio: InlineAudio | None = None
        self._rest = bytearray()
        # One [is_object, last_key, expecting_key] per open container.
        self._stack: list[list[object]] = []
        self._in_string = False
        self._escaped = False
        self._key: bytearray | None = None  # the key being read, when the string is a key
        self._mode = ""  # "" scanning; "decide" / "hex" inside data.audio
        self._pending = bytearray()  # data.audio's first characters, until they decide
        self._carry = b""  # an odd hex digit left over from the last chunk
        self._out: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._digest = hashlib.sha256()
        self._size = 0
        self._head = b""

    def feed(self, chunk: bytes) -> None:
        i = 0
        while i < len(chunk):
            if self._mode == "hex":
                end = chunk.find(b'"', i)
                self._decode(chunk[i:] if end < 0 else chunk[i:end])
                if end < 0:
                    return
                self._close_audio()
                self._rest += b'"'
                i = end + 1
                continue
            if self._mode == "decide":
                i = self._decide(chunk, i)
                continue
            self._scan(chunk[i])
            i += 1
        if len(self._rest) > self.max_rest_bytes:
            raise PermanentError("upstream_body_too_large",
                                 f"the upstream's answer is larger than {self.max_rest_bytes} bytes besides its audio",
                                 maybe_accepted=True)

    def finish(self) -> bytes:
        """The body with data.audio's hex left out (an empty string in its place)."""
        if self._mode:
            # Cut off inside data.audio: not JSON; json.loads says so on the rest.
            self._rest += self._pending
            self._mode = ""
        return bytes(self._rest)

    def discard(self) -> None:
        """Delete the spool file (on any failure, or when the caller is done with it)."""
        if self._out is not None:  # stopped inside data.audio
            self._out.close()
            Path(self._out.name).unlink(missing_ok=True)
            self._out = None
        if self.audio is not None:
            self.audio.path.unlink(missing_ok=True)

    # -- the JSON structure, one byte at a time outside data.audio ---------------------

    def _scan(self, byte: int) -> None:
        self._rest.append(byte)
        if self._in_string:
            if self._escaped:
                self._escaped = False
            elif byte == 0x5C:  # backslash
                self._escaped = True
            elif byte == 0x22:  # closing quote
                self._in_string = False
                if self._key is not None:
                    self._stack[-1][1] = bytes(self._key)
                    self._key = None
                return
            if self._key is not None and len(self._key) < 64:
                self._key.append(byte)
            return
        if byte == 0x22:
            self._in_string = True
            top = self._stack[-1] if self._stack else None
            if top is not None and top[0] and top[2]:
                self._key = bytearray()
            elif self._at_audio():
                self._in_string = False
                self._mode = "decide"
        elif byte in b"{[":
            self._stack.append([byte == 0x7B, b"", byte == 0x7B])
        elif byte in b"}]":
            if self._stack:
                self._stack.pop()
        elif byte == 0x3A and self._stack:  # ':' a value follows
            self._stack[-1][2] = False
        elif byte == 0x2C and self._stack and self._stack[-1][0]:  # ',' in an object: a key follows
            self._stack[-1][2] = True

    def _at_audio(self) -> bool:
        s = self._stack
        return (self.audio is None and self._out is None and len(s) == 2 and bool(s[0][0]) and s[0][1] == b"data"
                and bool(s[1][0]) and s[1][1] == b"audio")

    # -- inside data.audio ----------------------------------------------------------

    def _decide(self, chunk: bytes, i: int) -> int:
        while i < len(chunk) and len(self._pending) < _DECIDE:
            byte = chunk[i]
            if byte == 0x22 or byte not in _HEX:
                # Short, a URL, or not hex at all: kept as text for parse_generation.
                self._rest += self._pending
                self._pending.clear()
                self._mode = ""
                self._in_string = True
                return i
            self._pending.append(byte)
            i += 1
        if len(self._pending) == _DECIDE:
            self._mode = "hex"
            self._open_spool()
            pending = bytes(self._pending)
            self._pending.clear()
            self._decode(pending)
        return i

    def _open_spool(self) -> None:
        if self.spool_dir:
            Path(self.spool_dir).mkdir(parents=True, exist_ok=True)
        self._out = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in _close_audio or discard
            dir=self.spool_dir or None, prefix="songqueue-hex-", suffix=".part", delete=False)

    def _decode(self, text: bytes) -> None:
        text = self._carry + text.translate(None, _WHITESPACE)
        cut = len(text) & ~1
        self._carry = text[cut:]
        try:
            data = binascii.unhexlify(text[:cut])
        except binascii.Error:
            raise PermanentError("upstream_malformed", "MiniMax's data.audio is neither a URL nor hex-encoded audio",
                                 maybe_accepted=True) from None
        self._size += len(data)
        if self._size > self.max_audio_bytes:
            raise PermanentError("download_too_large",
                                 f"the inline audio exceeds the cap of {self.max_audio_bytes} bytes",
                                 maybe_accepted=True)
        if len(self._head) < _HEAD:
            self._head += data[:_HEAD - len(self._head)]
        self._digest.update(data)
        assert self._out is not None
        self._out.write(data)

    def _close_audio(self) -> None:
        assert self._out is not None
        self._out.close()
        path = Path(self._out.name)
        self._out = None
        self._mode = ""
        self.audio = InlineAudio(path, self._size, self._digest.hexdigest(), self._head)
        if self._carry:
            raise PermanentError("upstream_malformed", "MiniMax's data.audio has an odd number of hex digits",
                                 maybe_accepted=True)

