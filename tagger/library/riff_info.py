"""Text fields of a WAV file's RIFF ``LIST``/``INFO`` chunk (``IGNR`` genre, ``INAM`` title,
...), the tag FFmpeg, and so Jellyfin and mpv, read in a WAV besides its ID3 chunk.

The chunk walking, sizes and pad bytes are mutagen's (``mutagen._riff``); a field is one
sub-chunk holding a NUL-terminated string, written as UTF-8 (as FFmpeg writes it) and read
as UTF-8, or Latin-1 where it is not.
"""

from __future__ import annotations

import struct
from pathlib import Path

from mutagen._riff import RiffChunk, RiffFile, RiffListChunk

INFO = "INFO"


def _info_list(riff: RiffFile) -> RiffListChunk | None:
    for chunk in riff.root.subchunks():
        if isinstance(chunk, RiffListChunk) and chunk.id == "LIST" and chunk.name == INFO:
            return chunk
    return None


def _field(info: RiffListChunk, key: str) -> RiffChunk | None:
    return next((chunk for chunk in info.subchunks() if chunk.id == key), None)


def _encode(text: str) -> bytes:
    return text.encode("utf-8") + b"\0"


def read_info(path: Path, key: str) -> str | None:
    """The text of INFO field ``key`` (a four-letter id such as ``IGNR``); None when absent."""
    with open(path, "rb") as handle:
        info = _info_list(RiffFile(handle))
        chunk = info and _field(info, key)
        if chunk is None:
            return None
        data = chunk.read().split(b"\0", 1)[0]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def write_info(path: Path, key: str, text: str | None) -> None:
    """Set INFO field ``key`` to ``text`` in place (None: remove it), every other field and
    chunk kept as it is. The INFO list is added at the end of the file when it is missing,
    and removed when the field removed was its last."""
    with open(path, "rb+") as handle:
        riff = RiffFile(handle)
        info = _info_list(riff)
        if info is None:
            if text is not None:
                data = _encode(text)
                sub_chunk = struct.pack("<4sI", key.encode("ascii"), len(data)) + data
                riff.root.insert_chunk("LIST", INFO.encode("ascii") + sub_chunk
                                       + b"\0" * (len(data) % 2))
            return
        chunk = _field(info, key)
        if text is None:
            if chunk is not None:
                chunk.delete()
                if not info.subchunks():
                    info.delete()
            return
        data = _encode(text)
        if chunk is None:
            info.insert_chunk(key, data)
        else:
            chunk.resize(len(data))
            chunk.write(data)
