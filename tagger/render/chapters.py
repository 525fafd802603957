"""A song's segments as files players and editors read: a CUE sheet (``--cue``) and
FFmetadata chapters (``--chapters``, for ``ffmpeg -i mix.mp3 -i chapters.txt
-map_metadata 1 -codec copy out.mp3``).

Both cover the whole recording with one track or chapter per audible segment,
titled by its genre (``genre (uncertain)`` when it has no clear one). A stretch
of silence belongs to the track after it: in the CUE sheet as that track's
pregap (``INDEX 00``), in the chapters as its start; silence at the end
belongs to the last track.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tagger.atomic import atomic_write_text
from tagger.errors import TaggerError
from tagger.names import unicode_text
from tagger.results import SongResult

CUE_FRAMES_PER_SECOND = 75
CUE_MAX_TRACKS = 99
# The CUE file types by audio suffix; anything else is WAVE, which players take for any
# audio they can decode.
CUE_FILE_TYPES = {".mp3": "MP3", ".aif": "AIFF", ".aiff": "AIFF"}


@dataclass(frozen=True)
class Track:
    """One track: from ``start`` (its pregap, if any, from ``pregap_start``) to ``end``."""

    pregap_start: float
    start: float
    end: float
    title: str


def segment_tracks(result: SongResult) -> list[Track]:
    """The tracks of ``result``'s segments, covering 0 to its duration without gaps."""
    tracks: list[Track] = []
    silence_start: float | None = 0.0
    for segment in result.segments:
        if segment.silent:
            if tracks and silence_start is None:
                silence_start = segment.start
            continue
        title = f"{segment.label} (uncertain)" if segment.uncertain else str(segment.label)
        if tracks:  # the previous track ends where this one (or its pregap) starts
            pregap = segment.start if silence_start is None else silence_start
            tracks[-1] = Track(tracks[-1].pregap_start, tracks[-1].start, pregap,
                               tracks[-1].title)
        tracks.append(Track(segment.start if silence_start is None else silence_start,
                            segment.start, segment.end, title))
        silence_start = None
    if tracks:
        last = tracks[-1]
        tracks[-1] = Track(last.pregap_start, last.start, result.duration, last.title)
    return tracks


def cue_time(seconds: float) -> str:
    """``mm:ss:ff``: minutes (any number), seconds and frames of 1/75 s."""
    frames = round(seconds * CUE_FRAMES_PER_SECOND)
    minutes, rest = divmod(frames, 60 * CUE_FRAMES_PER_SECOND)
    whole, frame = divmod(rest, CUE_FRAMES_PER_SECOND)
    return f"{minutes:02d}:{whole:02d}:{frame:02d}"


def cue_text(text: str) -> str:
    """``text`` as a quoted CUE string, which cannot hold quotes or line breaks."""
    cleaned = " ".join(unicode_text(text).replace('"', "'").split())
    return f'"{cleaned}"'


def cue_sheet(result: SongResult, audio_name: str) -> str:
    """The CUE sheet of ``result``'s segments for the audio file ``audio_name`` (as the
    FILE line names it: relative to the sheet's folder, or absolute)."""
    tracks = segment_tracks(result)
    if len(tracks) > CUE_MAX_TRACKS:
        raise TaggerError(f"has {len(tracks)} segments, more than the {CUE_MAX_TRACKS} tracks "
                          "a CUE sheet holds", result.source,
                          "give a longer --min-segment or a higher --switch-penalty, or use "
                          "--chapters")
    file_type = CUE_FILE_TYPES.get(Path(audio_name).suffix.lower(), "WAVE")
    lines = [f"REM COMMENT {cue_text(f'genre-tag, model {result.model}')}",
             f"TITLE {cue_text(result.title)}",
             f"FILE {cue_text(audio_name)} {file_type}"]
    for number, track in enumerate(tracks, start=1):
        lines += [f"  TRACK {number:02d} AUDIO", f"    TITLE {cue_text(track.title)}"]
        if track.pregap_start < track.start:
            lines.append(f"    INDEX 00 {cue_time(track.pregap_start)}")
        lines.append(f"    INDEX 01 {cue_time(track.start)}")
    return "\n".join(lines) + "\n"


def ffmetadata_text(text: str) -> str:
    """``text`` with FFmetadata's special characters (``= ; # \\`` and line breaks)
    escaped by a backslash."""
    escaped = unicode_text(text)
    for special in "\\=;#\n":
        escaped = escaped.replace(special, "\\" + special)
    return escaped


def ffmetadata_chapters(result: SongResult) -> str:
    """``result``'s segments as FFmetadata chapters, in milliseconds."""
    lines = [";FFMETADATA1", f"title={ffmetadata_text(result.title)}", ""]
    for track in segment_tracks(result):
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={round(track.pregap_start * 1000)}",
                  f"END={round(track.end * 1000)}", f"title={ffmetadata_text(track.title)}", ""]
    return "\n".join(lines)


def write_cue(result: SongResult, path: Path, audio_name: str) -> None:
    atomic_write_text(path, cue_sheet(result, audio_name))


def write_chapters(result: SongResult, path: Path) -> None:
    atomic_write_text(path, ffmetadata_chapters(result))
