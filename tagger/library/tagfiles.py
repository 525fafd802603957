"""Reading and writing the fields genre-tag owns in an audio file's own tag, with mutagen.

A field is a list of strings (empty: absent). Where each field lives:

- MP3, WAV, AIFF (ID3v2.4): genre TCON, mood TMOO, the others TXXX:NAME;
- FLAC, Ogg Vorbis/Opus/FLAC (Vorbis comment): GENRE, MOOD, NAME;
- MP4, M4A, ALAC: genre ©gen, the others freeform ----:com.apple.iTunes:NAME;
- WMA (ASF): genre WM/Genre, mood WM/Mood, the others NAME;

where NAME is VALENCE, ENERGY, DANCEABILITY, or GENRE_TAGGER (the provenance) (and MOOD).

Every write goes into a hidden copy beside the file (``file_swap.edited_copy``), so the
file is either as it was or fully written, whatever happens. Only the fields written
change: the audio and every other tag are copied as they are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mutagen
from mutagen.aiff import AIFF
from mutagen.asf import ASF
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TCON, TMOO, TXXX, ID3FileType
from mutagen.mp4 import MP4, MP4FreeForm
from mutagen.ogg import OggFileType
from mutagen.wave import WAVE

from tagger.library.file_swap import SwapCheck, TagWriteError, edited_copy, write_failure

FIELDS = ("genre", "mood", "valence", "energy", "danceability", "provenance")
# The names of the fields that have no standard frame: TXXX descriptions, Vorbis comment
# names, MP4 freeform names, ASF attribute names.
CUSTOM_NAMES = {"valence": "VALENCE", "energy": "ENERGY", "danceability": "DANCEABILITY",
                "provenance": "GENRE_TAGGER", "mood": "MOOD"}
MP4_FREEFORM = "----:com.apple.iTunes:"
WRITABLE = "mp3, wav, aiff, flac, ogg, opus, m4a/mp4/alac and wma"
SUPPORTED = (ID3FileType, WAVE, AIFF, FLAC, OggFileType, MP4, ASF)
# Why the formats genre-tag decodes but mutagen cannot tag get no tag.
MATROSKA = "genre-tag cannot write Matroska/WebM tags"
NO_TAGS = {".aac": "raw AAC (ADTS) has no tag format", ".au": "Sun AU has no tag format",
           ".snd": "Sun AU has no tag format", ".webm": MATROSKA, ".mka": MATROSKA}


class CannotHoldTags(TagWriteError):
    """The file's format has no tag genre-tag can write."""


def open_tagged(path: Path) -> mutagen.FileType:
    """The file as mutagen reads it, with an empty tag added when it has none."""
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError) as error:
        raise TagWriteError(f"cannot read its tags: {error}", str(path),
                            "is it a complete audio file? re-rip or repair it"
                            ) from error
    if not isinstance(audio, SUPPORTED):
        reason = NO_TAGS.get(path.suffix.lower(), "its format has no tag genre-tag can write")
        raise CannotHoldTags(f"cannot hold tags: {reason}", str(path),
                             f"genre-tag writes tags into {WRITABLE} files")
    if audio.tags is None:
        try:
            audio.add_tags()
        except mutagen.MutagenError as error:
            raise CannotHoldTags(f"cannot hold tags: {error}", str(path),
                                 f"genre-tag writes tags into {WRITABLE} files") from error
    return audio


def _id3_key(field: str) -> str:
    return {"genre": "TCON", "mood": "TMOO"}.get(field, f"TXXX:{CUSTOM_NAMES.get(field)}")


def _mp4_key(field: str) -> str:
    return "\xa9gen" if field == "genre" else MP4_FREEFORM + CUSTOM_NAMES[field]


def _asf_key(field: str) -> str:
    return {"genre": "WM/Genre", "mood": "WM/Mood"}.get(field, CUSTOM_NAMES.get(field, ""))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(getattr(value, "value", value))


def read_field(audio: mutagen.FileType, field: str) -> list[str]:
    tags = audio.tags
    if isinstance(tags, ID3):
        frame = tags.get(_id3_key(field))
        if frame is None:
            return []
        values = frame.genres if isinstance(frame, TCON) else frame.text
        return [str(v) for v in values if str(v)]
    if isinstance(audio, MP4):
        key = _mp4_key(field)
    elif isinstance(audio, ASF):
        key = _asf_key(field)
    else:
        key = "GENRE" if field == "genre" else CUSTOM_NAMES[field]
    return [text for v in tags.get(key, []) if (text := _text(v))]


def read_fields(audio: mutagen.FileType) -> dict[str, list[str]]:
    return {field: read_field(audio, field) for field in FIELDS}


def set_field(audio: mutagen.FileType, field: str, values: list[str]) -> None:
    """Put ``values`` in ``field`` (none: remove it)."""
    tags = audio.tags
    if isinstance(tags, ID3):
        key = _id3_key(field)
        tags.delall(key)
        if values:
            if field == "genre":
                tags.add(TCON(encoding=3, text=values))
            elif field == "mood":
                tags.add(TMOO(encoding=3, text=values))
            else:
                tags.add(TXXX(encoding=3, desc=CUSTOM_NAMES[field], text=values))
        return
    if isinstance(audio, MP4):
        key = _mp4_key(field)
        converted: list[Any] = (values if field == "genre"
                                else [MP4FreeForm(v.encode("utf-8")) for v in values])
    elif isinstance(audio, ASF):
        key, converted = _asf_key(field), values
    else:
        key, converted = ("GENRE" if field == "genre" else CUSTOM_NAMES[field]), values
    if values:
        tags[key] = converted
    elif key in tags:
        del tags[key]


def write_fields(path: Path, changes: Mapping[str, list[str]], keep_mtime: bool = True,
                 before_swap: SwapCheck | None = None) -> None:
    """Set ``changes`` (field: values, empty to remove) in the file's tag, atomically;
    ``before_swap`` as in ``edited_copy``."""
    kind = type(open_tagged(Path(os.path.realpath(path))))
    with edited_copy(path, keep_mtime, before_swap) as copy:
        try:
            audio = kind(copy)
            if audio.tags is None:
                audio.add_tags()
            for field, values in changes.items():
                set_field(audio, field, values)
            audio.save(**({"v2_version": 4} if isinstance(audio.tags, ID3) else {}))
        except mutagen.MutagenError as error:
            raise write_failure(error, path) from error
