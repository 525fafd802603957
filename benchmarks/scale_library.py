"""The generated library of bench_library_scale.py: distinct short clips in every format
genre-tag writes, some with tags set by hand; what each file holds (audio, tags, bytes),
read with mutagen independently of genre-tag's own tag code; and the checks of what the
runs changed."""

from __future__ import annotations

import hashlib
import os
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import av
import mutagen
import numpy as np
from mutagen.asf import ASF
from mutagen.id3 import ID3, TALB, TCON, TIT2, TPE1, TRCK
from mutagen.mp4 import MP4

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from audio_fixtures import chord, synth_song

from tagger.audio import PARTIAL_COPY_MARK, audio_content_sha256, decode_to_array
from tagger.errors import TaggerError

# extension: (container, codec, sample rate, encoder options), every format genre-tag writes
# tags into; the options make LAME and FFmpeg's AAC encoder several times faster. FFmpeg's
# own Vorbis encoder is marked experimental.
FORMATS: dict[str, tuple[str, str, int, dict[str, str]]] = {
    ".mp3": ("mp3", "libmp3lame", 44100, {"compression_level": "9"}),
    ".wav": ("wav", "pcm_s16le", 44100, {}),
    ".aiff": ("aiff", "pcm_s16be", 44100, {}),
    ".flac": ("flac", "flac", 44100, {}),
    ".ogg": ("ogg", "vorbis", 44100, {"strict": "experimental"}),
    ".opus": ("opus", "libopus", 48000, {}),
    ".m4a": ("ipod", "aac", 44100, {"aac_coder": "fast"}),
    ".wma": ("asf", "wmav2", 44100, {}),
}
# The tag keys genre-tag writes (lower case), in every format, and the ID3 version it saves.
OWN_KEYS = {"tcon", "txxx:genre_tagger", "\xa9gen", "----:com.apple.itunes:genre_tagger",
            "wm/genre", "genre", "genre_tagger", "(id3 version)"}
HAND_GENRES = (["Polka"], ["Jazz", "Swing"], ["Field Recording"])
# The tag keys of each kind of tag: ID3 frames, MP4 atoms, ASF attributes, Vorbis comments.
MP4_KEYS = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "genre": "\xa9gen"}
ASF_KEYS = {"title": "Title", "artist": "Author", "album": "WM/AlbumTitle",
            "track": "WM/TrackNumber", "genre": "WM/Genre"}


@dataclass(frozen=True)
class PlannedFile:
    """One file of the library: where, which clip, and the tags it gets before any run."""

    index: int
    path: Path
    hand_genre: tuple[str, ...]  # empty: no genre set by hand
    titled: bool  # title, artist, album and track number set
    id3_v23: bool  # an MP3 whose tag is saved as ID3v2.3, as most taggers do


def plan_library(root: Path, files: int, extensions: list[str]) -> list[PlannedFile]:
    """``files`` files in folders of 1000 and albums of 25, formats taken in turn; one in
    ten with a genre set by hand, half with a title and artist, the rest as encoded."""
    planned = []
    for index in range(files):
        extension = extensions[index % len(extensions)]
        name = f"{index:05d} {'Café del Mar' if index % 7 == 0 else 'track'}{extension}"
        kind = index % 10
        planned.append(PlannedFile(
            index, root / f"{index // 1000:02d}" / f"album {index // 25 % 40:02d}" / name,
            tuple(HAND_GENRES[index // 10 % len(HAND_GENRES)]) if kind == 0 else (),
            kind <= 5, extension == ".mp3" and index % 20 < 10))
    return planned


def clip(index: int, seconds: float, rate: int) -> np.ndarray:
    """A stereo clip of its own for every index: a synthetic song, a chord, or both, with
    seeded noise, so no two files share their audio (or their results cache entry)."""
    rng = np.random.default_rng(index)
    root = 110.0 * 2 ** ((index % 37) / 12)
    kind = index % 3
    if kind == 0:
        mono = synth_song(seconds, rate, seed=index)
    elif kind == 1:
        mono = chord(seconds, rate, root=root)
    else:
        mono = 0.6 * synth_song(seconds, rate, seed=index) + 0.4 * chord(seconds, rate, root)
    left = mono + 0.01 * rng.standard_normal(mono.size)
    right = np.roll(mono, index % 50) + 0.01 * rng.standard_normal(mono.size)
    return np.clip(np.stack([left, right]), -1, 1).astype(np.float32)


def audio_frame(samples: np.ndarray, format_name: str, rate: int) -> av.AudioFrame:
    """Stereo ``samples`` (2, n) in -1..1 as a frame of the encoder's sample format."""
    sample_format = av.AudioFormat(format_name)
    data = samples if sample_format.is_planar else samples.T.reshape(1, -1)
    if sample_format.name.startswith("s16"):
        data = (data * 32767).astype(np.int16)
    elif sample_format.name.startswith("s32"):
        data = (data * 2147483647).astype(np.int32)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=sample_format.name,
                                       layout="stereo")
    frame.sample_rate = rate
    return frame


def encode(path: Path, samples: np.ndarray) -> None:
    """Encode stereo ``samples`` in the format of ``path``'s extension."""
    container, codec, rate, options = FORMATS[path.suffix]
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate, layout="stereo")
        stream.bit_rate = 128_000
        stream.codec_context.options = options
        frame = audio_frame(samples, stream.codec_context.format.name, rate)
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)


def set_tags(path: Path, fields: dict[str, list[str]], id3_v23: bool) -> None:
    """Set ``fields`` (title, artist, album, track, genre) with mutagen, in the format's tag."""
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    if isinstance(tags, ID3):
        frames = {"title": TIT2, "artist": TPE1, "album": TALB, "track": TRCK, "genre": TCON}
        for field, values in fields.items():
            tags.add(frames[field](encoding=3, text=values))
        audio.save(v2_version=3 if id3_v23 else 4)
        return
    for field, values in fields.items():
        if isinstance(audio, MP4):
            if field == "track":
                tags["trkn"] = [(int(values[0]), 25)]
            else:
                tags[MP4_KEYS[field]] = values
        elif isinstance(audio, ASF):
            tags[ASF_KEYS[field]] = values
        else:
            tags["tracknumber" if field == "track" else field] = values
    audio.save()


def make_file(planned: PlannedFile, seconds: float) -> None:
    """Encode the planned file's clip and set its tags."""
    rate = FORMATS[planned.path.suffix][2]
    planned.path.parent.mkdir(parents=True, exist_ok=True)
    encode(planned.path, clip(planned.index, seconds, rate))
    fields: dict[str, list[str]] = {}
    if planned.titled:
        fields = {"title": [f"Song {planned.index} — Été"],
                  "artist": [f"Artist {planned.index % 97}"],
                  "album": [f"Album {planned.index // 25}"],
                  "track": [str(planned.index % 25 + 1)]}
    if planned.hand_genre:
        fields["genre"] = list(planned.hand_genre)
    if fields:
        set_tags(planned.path, fields, planned.id3_v23)


def make_library(planned: list[PlannedFile], seconds: float) -> None:
    """Make the planned files, with a process per CPU."""
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(partial(make_file, seconds=seconds), planned, chunksize=32))


def encodable(extensions: list[str], folder: Path) -> tuple[list[str], dict[str, str]]:
    """The extensions the local FFmpeg encodes (a 1-second probe each), and why the others
    are left out."""
    usable, left_out = [], {}
    for extension in extensions:
        container, codec, rate, _ = FORMATS[extension]
        probe = folder / f"probe{extension}"
        try:
            encode(probe, clip(0, 1.0, rate))
            if mutagen.File(probe) is None:
                raise ValueError("mutagen cannot read the result")
            usable.append(extension)
        except (av.FFmpegError, ValueError) as error:
            left_out[extension] = f"{codec} in {container}: {error}"
        finally:
            probe.unlink(missing_ok=True)
    return usable, left_out


def tag_snapshot(audio: mutagen.FileType) -> dict[str, list[str]]:
    """Every tag key with its values as mutagen shows them (and the ID3 version)."""
    tags = audio.tags
    if tags is None:
        return {}
    if isinstance(tags, ID3):
        snapshot = {key: [repr(frame)] for key, frame in tags.items()}
        if snapshot:
            snapshot["(ID3 version)"] = [".".join(map(str, tags.version))]
        return snapshot
    if isinstance(audio, ASF):
        return {key: sorted(map(repr, values)) for key, values in tags.as_dict().items()}
    if isinstance(audio, MP4):
        return {key: [repr(value) for value in values] for key, values in tags.items()}
    snapshot: dict[str, list[str]] = {}
    for key, value in tags:  # Vorbis comments: (name, value) pairs, names as written
        snapshot.setdefault(key, []).append(value)
    return snapshot


def genre_of(audio: mutagen.FileType) -> list[str]:
    """The file's genres, read with mutagen alone."""
    tags = audio.tags
    if tags is None:
        return []
    if isinstance(tags, ID3):
        frame = tags.get("TCON")
        return list(frame.genres) if frame else []
    if isinstance(audio, MP4):
        return list(tags.get(MP4_KEYS["genre"], []))
    if isinstance(audio, ASF):
        return [str(value) for value in tags.get(ASF_KEYS["genre"], [])]
    return [value for key, value in tags if key.lower() == "genre"]


@dataclass(frozen=True)
class FileState:
    """What one file holds at one moment."""

    decode_error: str | None  # None also when it was not decoded
    audio_sha256: str | None
    bytes_sha256: str
    size: int
    mtime_ns: int
    tags: dict[str, list[str]]
    genre: list[str]


def file_state(path: Path, decode: bool = True) -> FileState:
    """Checksum the file's audio and bytes, read its tags, and (``decode``) decode it."""
    error, audio_sha256 = None, None
    try:
        if decode:
            decode_to_array(path, 16000)
        audio_sha256 = audio_content_sha256(path)
    except TaggerError as failure:
        error = failure.message
    audio = mutagen.File(path)
    info = os.stat(path)
    return FileState(error, audio_sha256, hashlib.sha256(path.read_bytes()).hexdigest(),
                     info.st_size, info.st_mtime_ns, tag_snapshot(audio), genre_of(audio))


def states(paths: list[Path], decode: bool = True) -> list[FileState]:
    """Every file's state, read with a process per CPU."""
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        return list(pool.map(partial(file_state, decode=decode), paths, chunksize=32))


def tag_difference(before: dict[str, list[str]], after: dict[str, list[str]]) -> str:
    """What changed between two tag snapshots, in a few words ('' when nothing did)."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(key for key in set(before) & set(after) if before[key] != after[key])
    parts = [f"{what} {', '.join(keys)}" for what, keys in
             (("added", added), ("removed", removed), ("changed", changed)) if keys]
    return "; ".join(parts)


def other_tags(snapshot: dict[str, list[str]]) -> dict[str, list[str]]:
    return {key: values for key, values in snapshot.items() if key.lower() not in OWN_KEYS}


def examples(paths: list[Path], library: Path, most: int = 3) -> list[str]:
    return [str(path.relative_to(library)) for path in paths[:most]]


def write_checks(planned: list[PlannedFile], before: list[FileState], after: list[FileState],
                 records: list[dict], library: Path) -> dict:
    """The checks after the write runs: failures as counts with example files."""
    last_record = {record["path"]: record for record in records}
    failures: dict[str, list[Path]] = {name: [] for name in (
        "does not decode", "audio changed", "hand-set genre changed", "other tags changed",
        "no genre, the report says nothing", "modification time changed")}
    no_genre_reasons: Counter = Counter()
    for file, old, new in zip(planned, before, after, strict=True):
        problems = {"does not decode": new.decode_error is not None,
                    "audio changed": new.audio_sha256 != old.audio_sha256,
                    "hand-set genre changed": bool(file.hand_genre) and new.genre != old.genre,
                    "other tags changed": other_tags(new.tags) != other_tags(old.tags),
                    "modification time changed": new.mtime_ns != old.mtime_ns}
        if not file.hand_genre and not new.genre:
            notes = last_record.get(str(file.path), {}).get("notes", [])
            reason = next((note for note in notes if note.startswith("no genre")), None)
            if reason:
                no_genre_reasons[reason.split(",")[0]] += 1
            else:
                problems["no genre, the report says nothing"] = True
        for name, failed in problems.items():
            if failed:
                failures[name].append(file.path)
    failures["partial copies left"] = sorted(library.rglob(f"*{PARTIAL_COPY_MARK}*"))
    return {"failures": {name: {"files": len(paths), "examples": examples(paths, library)}
                         for name, paths in failures.items()},
            "with a genre-tag genre": sum(1 for file, new in zip(planned, after, strict=True)
                                          if not file.hand_genre and new.genre),
            "no genre, with the report's reason": dict(no_genre_reasons)}


def restore_comparison(before: list[FileState], restored: list[FileState],
                       paths: list[Path], library: Path) -> dict:
    """How many files hold the tags and bytes they held before the first run, and what
    differs in the others, grouped by format."""
    differences: Counter = Counter()
    example: dict[str, str] = {}
    for path, old, new in zip(paths, before, restored, strict=True):
        if new.bytes_sha256 == old.bytes_sha256:
            continue
        what = tag_difference(old.tags, new.tags) or (
            f"same tags, bytes differ (size {new.size - old.size:+d})")
        id3 = old.tags.get("(ID3 version)", new.tags.get("(ID3 version)", [""]))[0]
        key = f"{path.suffix}{f' ID3v{id3}' if id3 else ''}: {what}"
        differences[key] += 1
        example.setdefault(key, str(path.relative_to(library)))
    return {"same tags": sum(1 for old, new in zip(before, restored, strict=True)
                             if old.tags == new.tags),
            "byte-identical": sum(1 for old, new in zip(before, restored, strict=True)
                                  if old.bytes_sha256 == new.bytes_sha256),
            "differences": [{"files": count, "what": key, "example": example[key]}
                            for key, count in differences.most_common()]}
