"""The genre in the tags players read beside a file's main tag: an MP3's APEv2 and ID3v1
tags, and a WAV's RIFF ``LIST``/``INFO`` chunk (field ``IGNR``, what FFmpeg and many rippers
write, and what FFmpeg-based servers such as Jellyfin show).

Read in this order, the first that holds a genre giving it: APEv2, RIFF INFO, ID3v1 (the
richer tags first, ID3v1's one-byte genre last). Written together with the main tag, so that
no file ends with two conflicting genres: APEv2 and ID3v1 when the file already has them,
RIFF INFO in every WAV (the chunk is added when missing). Nothing else in them changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import mutagen
from mutagen import apev2
from mutagen._iff import error as IffError
from mutagen.id3 import TCON, ID3FileType
from mutagen.id3._id3v1 import find_id3v1
from mutagen.wave import WAVE

from tagger.library.riff_info import read_info, write_info

# RIFF INFO holds one string: several genres are joined by this, and split at ';' on reading.
INFO_GENRE_SEPARATOR = "; "
ID3V1_SIZE = 128
ID3V1_NO_GENRE = 255


def _apev2(path: Path) -> apev2.APEv2 | None:
    try:
        return apev2.APEv2(path)
    except apev2.error:  # no APEv2 tag, or one mutagen cannot parse: left alone
        return None


def _apev2_genre(path: Path) -> list[str]:
    tag = _apev2(path)
    value = tag.get("Genre") if tag is not None else None
    return [text for text in value] if isinstance(value, apev2.APETextValue) else []


def _info_genre(path: Path) -> list[str]:
    try:
        text = read_info(path, "IGNR")
    except IffError:
        return []
    return [name.strip() for name in (text or "").split(";") if name.strip()]


def _id3v1_genre(path: Path) -> list[str]:
    with open(path, "rb") as handle:
        frames, _offset = find_id3v1(handle)
    frame = (frames or {}).get("TCON")
    return list(frame.genres) if frame is not None else []


def side_genre(audio: mutagen.FileType) -> list[str]:
    """The genre of the first side tag of ``audio``'s file that holds one (empty: none)."""
    path = Path(audio.filename)
    if isinstance(audio, ID3FileType):
        return _apev2_genre(path) or _id3v1_genre(path)
    if isinstance(audio, WAVE):
        return _info_genre(path)
    return []


def _id3v1_genre_byte(genres: list[str]) -> int:
    """ID3v1's number for the first genre (255, none, for a name not on its list)."""
    names = [name.casefold() for name in TCON.GENRES]
    first = genres[0].casefold() if genres else None
    return names.index(first) if first in names else ID3V1_NO_GENRE


@contextlib.contextmanager
def kept_id3v1(path: Path, genres: list[str] | None) -> Iterator[None]:
    """Around mutagen saves of ``path`` (an ID3 save rebuilds the ID3v1 tag from the ID3v2
    frames, an APEv2 save drops it): put the ID3v1 tag back as it was, at the end, with
    ``genres`` as its genre unless None."""
    with open(path, "rb") as handle:
        frames, offset = find_id3v1(handle)
        handle.seek(offset, 2)
        original = handle.read() if frames is not None else b""
    yield
    if len(original) != ID3V1_SIZE:  # none (or too short to be anyone's): as mutagen left it
        return
    if genres is not None:
        original = original[:-1] + bytes([_id3v1_genre_byte(genres)])
    with open(path, "rb+") as handle:
        frames, offset = find_id3v1(handle)
        handle.seek(offset if frames is not None else 0, 2)
        handle.write(original)
        handle.truncate()


def write_side_genre(audio: mutagen.FileType, genres: list[str]) -> None:
    """Give the side tags of ``audio``'s (already saved) file ``genres`` (empty: none);
    ID3v1 is ``kept_id3v1``'s, around this."""
    path = Path(audio.filename)
    if isinstance(audio, ID3FileType):
        tag = _apev2(path)
        if tag is None:
            return
        if genres:
            tag["Genre"] = genres
        elif "Genre" in tag:
            del tag["Genre"]
        tag.save(path)
    elif isinstance(audio, WAVE):
        write_info(path, "IGNR", INFO_GENRE_SEPARATOR.join(genres) if genres else None)
