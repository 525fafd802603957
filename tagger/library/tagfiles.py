"""Reading and writing the fields genre-tag owns in an audio file's own tag, with mutagen.

A field is a list of strings (empty: absent). Where each field lives:

- MP3, WAV, AIFF (ID3v2): genre TCON, mood TMOO (TXXX:MOOD in v2.3, which has no TMOO, as
  Picard writes it), the others TXXX:NAME;
- FLAC, Ogg Vorbis/Opus/FLAC (Vorbis comment): GENRE, MOOD, NAME;
- MP4, M4A, ALAC: genre ©gen, the others freeform ----:com.apple.iTunes:NAME;
- WMA (ASF): genre WM/Genre, mood WM/Mood, the others NAME;

where NAME is VALENCE, ENERGY, DANCEABILITY, or GENRE_TAGGER (the provenance) (and MOOD).

An ID3v2 tag keeps its version: v2.4 stays v2.4, v2.3 stays v2.3 (TYER, TDAT and the other
frames as they are, nothing translated), and v2.2, which mutagen cannot write, becomes v2.3,
its closest version; a file without one gets v2.4. ID3v2.3 has one string per frame, so its
genres are joined by the separator its TCON already uses ('/', '; ', ', ', ...; '/' when it
shows none, as mutagen's ``v23_sep``), and read back split at it.

A genre set beside the main tag counts too: where the main tag has none, the genre read is
that of the side tags players read (``side_tags``: an MP3's APEv2 then ID3v1, a WAV's RIFF
INFO ``IGNR``), and a genre written goes into those as well.

The format is that of the file's content: an MP3 named ``.flac`` is tagged as an MP3 and
keeps its name.

Every write goes into a hidden copy beside the file (``file_swap.edited_copy``), so the
file is either as it was or fully written, whatever happens. Only the fields written
change: the audio and every other tag are copied as they are (mutagen rewrites a whole tag,
so frames may change order and padding; their contents stay).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import av
import mutagen
from mutagen.aiff import AIFF
from mutagen.asf import ASF
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TCON, TMOO, TXXX, ID3FileType
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4FreeForm
from mutagen.ogg import OggFileType
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from tagger.library.file_swap import SwapCheck, TagWriteError, edited_copy, write_failure
from tagger.library.side_tags import kept_id3v1, side_genre, write_side_genre

FIELDS = ("genre", "mood", "valence", "energy", "danceability", "provenance")
# The names of the fields that have no standard frame: TXXX descriptions, Vorbis comment
# names, MP4 freeform names, ASF attribute names.
CUSTOM_NAMES = {"valence": "VALENCE", "energy": "ENERGY", "danceability": "DANCEABILITY",
                "provenance": "GENRE_TAGGER", "mood": "MOOD"}
MP4_FREEFORM = "----:com.apple.iTunes:"
WRITABLE = "mp3, wav, aiff, flac, ogg, opus, m4a/mp4/alac and wma"
SUPPORTED = (ID3FileType, WAVE, AIFF, FLAC, OggFileType, MP4, ASF)
ID3_KINDS = (ID3FileType, WAVE, AIFF)
# The tag format of each container FFmpeg finds in a file's content (its demuxer's names).
BY_CONTENT: dict[str, type[mutagen.FileType]] = {
    "mp3": MP3, "wav": WAVE, "aiff": AIFF, "flac": FLAC, "mp4": MP4, "asf": ASF}
OGG_KINDS = (OggVorbis, OggOpus, OggFLAC, OggSpeex)
# How ID3v2.3 tags are seen to separate genres in their one TCON string, most specific first.
V23_SEPARATORS = ("; ", ", ", " / ", "/", ";", ",")
# Why the formats genre-tag decodes but mutagen cannot tag get no tag.
MATROSKA = "genre-tag cannot write Matroska/WebM tags"
NO_TAGS = {".aac": "raw AAC (ADTS) has no tag format", ".au": "Sun AU has no tag format",
           ".snd": "Sun AU has no tag format", ".webm": MATROSKA, ".mka": MATROSKA}


class CannotHoldTags(TagWriteError):
    """The file's format has no tag genre-tag can write."""


def load(kind: type[mutagen.FileType], path: Path) -> mutagen.FileType:
    """``path`` read as ``kind``; an ID3v2 tag as it is in the file (no ID3v1 merged in,
    nothing translated to v2.4), so that saving it changes only what was set."""
    if issubclass(kind, ID3_KINDS):
        return kind(path, translate=False, load_v1=False)
    return kind(path)


def kind_by_content(path: Path) -> type[mutagen.FileType] | None:
    """The tag format of the container FFmpeg finds in the file, whatever its name says."""
    try:
        with av.open(str(path)) as container:
            names = set(container.format.name.split(","))
    except (av.error.FFmpegError, OSError):
        return None
    if "ogg" in names:
        with open(path, "rb") as handle:
            header = handle.read(128)
            scores = {kind: kind.score("", handle, header) for kind in OGG_KINDS}
        best = max(scores, key=scores.__getitem__)
        return best if scores[best] else None
    return next((kind for name, kind in BY_CONTENT.items() if name in names), None)


def _open(path: Path) -> mutagen.FileType | None:
    """mutagen's reading (the kind chosen by name and content), or, where that fails or finds
    no tag format, the kind the content shows."""
    try:
        audio = mutagen.File(path)
        if isinstance(audio, SUPPORTED):
            return load(type(audio), path) if isinstance(audio, ID3_KINDS) else audio
    except mutagen.MutagenError:
        kind = kind_by_content(path)
        if kind is None:
            raise
        return load(kind, path)
    kind = kind_by_content(path)
    return load(kind, path) if kind is not None else audio


def open_tagged(path: Path) -> mutagen.FileType:
    """The file as mutagen reads it, with an empty tag added when it has none."""
    try:
        audio = _open(path)
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


def _id3_key(field: str, tags: ID3) -> str:
    if field == "mood" and tags.version >= (2, 4, 0):
        return "TMOO"
    return "TCON" if field == "genre" else f"TXXX:{CUSTOM_NAMES[field]}"


def _mp4_key(field: str) -> str:
    return "\xa9gen" if field == "genre" else MP4_FREEFORM + CUSTOM_NAMES[field]


def _asf_key(field: str) -> str:
    return {"genre": "WM/Genre", "mood": "WM/Mood"}.get(field, CUSTOM_NAMES.get(field, ""))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(getattr(value, "value", value))


def genre_separator(tags: ID3) -> str | None:
    """How the tag separates several genres in TCON: None for NUL-separated values (v2.4, or
    a v2.3 tag already holding several), else the v2.3 separator its genre shows ('/' when
    it shows none)."""
    frame = tags.get("TCON")
    if tags.version >= (2, 4, 0) or (frame is not None and len(frame.text) > 1):
        return None
    text = str(frame) if frame is not None else ""
    return next((separator for separator in V23_SEPARATORS if separator in text), "/")


def _id3_genres(tags: ID3) -> list[str]:
    frame = tags.get("TCON")
    if frame is None:
        return []
    separator = genre_separator(tags)
    names = [name.strip() for genre in frame.genres
             for name in (genre.split(separator) if separator else [genre])]
    return list(dict.fromkeys(name for name in names if name))


def _main_field(audio: mutagen.FileType, field: str) -> list[str]:
    tags = audio.tags
    if isinstance(tags, ID3):
        if field == "genre":
            return _id3_genres(tags)
        frame = tags.get(_id3_key(field, tags))
        return [str(v) for v in frame.text if str(v)] if frame is not None else []
    if isinstance(audio, MP4):
        key = _mp4_key(field)
    elif isinstance(audio, ASF):
        key = _asf_key(field)
    else:
        key = "GENRE" if field == "genre" else CUSTOM_NAMES[field]
    return [text for v in tags.get(key, []) if (text := _text(v))]


def read_field(audio: mutagen.FileType, field: str) -> list[str]:
    """The field's values as a player shows them: the main tag's, and for the genre, where
    the main tag has none, the side tags' (``side_tags.side_genre``)."""
    values = _main_field(audio, field)
    if field == "genre" and not values:
        return side_genre(audio)
    return values


def read_fields(audio: mutagen.FileType) -> dict[str, list[str]]:
    return {field: read_field(audio, field) for field in FIELDS}


def set_field(audio: mutagen.FileType, field: str, values: list[str]) -> None:
    """Put ``values`` in ``field`` of the main tag (none: remove it)."""
    tags = audio.tags
    if isinstance(tags, ID3):
        key = _id3_key(field, tags)
        separator = genre_separator(tags)
        tags.delall(key)
        if values:
            if field == "genre":
                tags.add(TCON(encoding=3, text=[separator.join(values)] if separator else values))
            elif key == "TMOO":
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


def save(audio: mutagen.FileType, genres: list[str] | None) -> None:
    """Save ``audio``'s main tag (an ID3v2 tag in its own version) and, when ``genres`` were
    set (not None), the side tags' genre."""
    path = Path(audio.filename)
    # mutagen rebuilds (ID3 save) or drops (APEv2 save) an MP3's ID3v1 tag: it is put back
    kept = kept_id3v1(path, genres) if isinstance(audio, ID3FileType) else nullcontext()
    with kept:
        if isinstance(audio.tags, ID3):  # v2.3 genres are joined in set_field, so other
            # frames keep their NUL separators
            audio.save(v2_version=4 if audio.tags.version >= (2, 4, 0) else 3, v23_sep=None)
        else:
            audio.save()
        if genres is not None:
            write_side_genre(audio, genres)


def write_fields(path: Path, changes: Mapping[str, list[str]], keep_mtime: bool = True,
                 before_swap: SwapCheck | None = None) -> None:
    """Set ``changes`` (field: values, empty to remove) in the file's tag, atomically;
    ``before_swap`` as in ``edited_copy``."""
    kind = type(open_tagged(Path(os.path.realpath(path))))
    with edited_copy(path, keep_mtime, before_swap) as copy:
        try:
            audio = load(kind, copy)
            if audio.tags is None:
                audio.add_tags()
            for field, values in changes.items():
                set_field(audio, field, values)
            save(audio, changes.get("genre"))
        except mutagen.MutagenError as error:
            raise write_failure(error, path) from error
