"""Writing genres into a library of every format, through the real CLI and real mutagen reads."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import av
import mutagen
import numpy as np
import pytest
from audio_fixtures import FORMATS, chord, write_audio
from click.testing import CliRunner, Result
from mutagen.asf import ASF
from mutagen.id3 import ID3, TIT2, TPE1
from mutagen.mp4 import MP4

from tagger.audio import AUDIO_EXTENSIONS, audio_content_sha256
from tagger.cli import main
from tagger.library.genres import TAG_NAMES

# The formats the fixtures cannot encode by extension: the same streams under another name,
# and three codecs of their own.
RENAMED = {".aif": ".aiff", ".aifc": ".aiff", ".oga": ".ogg", ".snd": ".au", ".mka": ".webm",
           ".mp4": ".m4a"}
ENCODED = {".wma": ("asf", "wmav2"), ".aac": ("adts", "aac"), ".alac": ("ipod", "alac")}
CANNOT_HOLD_TAGS = {".aac", ".au", ".snd", ".webm", ".mka"}
TAGGABLE = sorted(AUDIO_EXTENSIONS - CANNOT_HOLD_TAGS)
HAND_TAGGED = "hand.flac"


def encode(path: Path, container: str, codec: str, seconds: float = 3.0) -> None:
    rate = 44100
    samples = chord(seconds, rate)[None]
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = 128000
        sample_format = "s16p" if codec == "alac" else "fltp"
        data = (samples * 32767).astype(np.int16) if codec == "alac" else samples
        frame = av.AudioFrame.from_ndarray(data, format=sample_format, layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            output.mux(packet)


def field_key(audio: mutagen.FileType, field: str) -> str:
    if isinstance(audio.tags, ID3):
        return {"title": "TIT2", "artist": "TPE1", "genre": "TCON", "mood": "TMOO",
                "valence": "TXXX:VALENCE"}[field]
    if isinstance(audio, MP4):
        return {"title": "\xa9nam", "artist": "\xa9ART", "genre": "\xa9gen",
                "mood": "----:com.apple.iTunes:MOOD",
                "valence": "----:com.apple.iTunes:VALENCE"}[field]
    if isinstance(audio, ASF):
        return {"title": "Title", "artist": "Author", "genre": "WM/Genre", "mood": "WM/Mood",
                "valence": "VALENCE"}[field]
    return field.upper()


def read_tag(path: Path, field: str) -> list[str]:
    """A field as mutagen reads it, independently of genre-tag's own code."""
    audio = mutagen.File(path)
    if audio.tags is None:
        return []
    found = audio.tags.get(field_key(audio, field))
    if found is None:
        return []
    if isinstance(audio.tags, ID3):
        return list(found.genres) if field == "genre" else [str(v) for v in found.text]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in found]


def set_title_and_artist(path: Path, genre: str | None = None) -> None:
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    if isinstance(audio.tags, ID3):
        audio.tags.add(TIT2(encoding=3, text=["A title"]))
        audio.tags.add(TPE1(encoding=3, text=["An artist"]))
    else:
        audio.tags[field_key(audio, "title")] = ["A title"]
        audio.tags[field_key(audio, "artist")] = ["An artist"]
    if genre:
        audio.tags[field_key(audio, "genre")] = [genre]
    audio.save()


@pytest.fixture(scope="session")
def library_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One three-second file of every extension genre-tag decodes, titled where it can be,
    and one FLAC whose genre was set by hand."""
    folder = tmp_path_factory.mktemp("library")
    for extension in FORMATS:
        write_audio(folder / f"song{extension}", chord(3.0, FORMATS[extension][3]),
                    FORMATS[extension][3])
    for extension, source in RENAMED.items():
        shutil.copyfile(folder / f"song{source}", folder / f"song{extension}")
    for extension, (container, codec) in ENCODED.items():
        encode(folder / f"song{extension}", container, codec)
    shutil.copyfile(folder / "song.flac", folder / HAND_TAGGED)
    for extension in TAGGABLE:
        set_title_and_artist(folder / f"song{extension}")
    set_title_and_artist(folder / HAND_TAGGED, genre="Jazz")
    assert {p.suffix for p in folder.iterdir()} == AUDIO_EXTENSIONS
    return folder


@pytest.fixture(autouse=True)
def undo_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the undo store out of the user's real data folder."""
    folder = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    return folder


@pytest.fixture
def library(library_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(library_template, tmp_path / "music"))


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu"])


def snapshot(folder: Path) -> dict[str, str]:
    """Every file's bytes, by name: what must not change when nothing is written."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def outcome_lines(result: Result, status: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(status)]


@pytest.mark.slow
def test_a_library_of_every_format_through_dry_run_write_rerun_overwrite_and_restore(
        library: Path) -> None:
    taggable = [library / f"song{extension}" for extension in TAGGABLE]
    audio = {p.name: audio_content_sha256(p) for p in library.iterdir()}
    mtimes = {p.name: p.stat().st_mtime_ns for p in library.iterdir()}
    before = snapshot(library)

    dry = run(str(library), "--write-tags", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert snapshot(library) == before
    assert len(outcome_lines(dry, "would write")) == len(TAGGABLE)
    assert "song.mp3: (none) -> Electronic" in dry.stdout
    cannot = outcome_lines(dry, "cannot tag")
    assert sorted(line.split(":")[0].rsplit(".", 1)[1] for line in cannot) == sorted(
        e[1:] for e in CANNOT_HOLD_TAGS)
    assert all("cannot hold tags" in line for line in cannot)
    assert f"{HAND_TAGGED}: Jazz" in outcome_lines(dry, "left alone")[0]
    total = len(AUDIO_EXTENSIONS) + 1
    assert (f"processed={total} written=0 would_write={len(TAGGABLE)} "
            f"skipped={len(CANNOT_HOLD_TAGS) + 1} errors=0") in dry.stdout

    written = run(str(library), "--write-tags")
    assert written.exit_code == 0, written.output
    assert len(outcome_lines(written, "written")) == len(TAGGABLE)
    assert f"processed={total} written={len(TAGGABLE)} " in written.stdout
    genres = {path: read_tag(path, "genre") for path in taggable}
    for path in taggable:  # the top genre first; a second may pass its threshold in a codec
        assert genres[path][0] == "Electronic" and len(genres[path]) <= 2, path.name
        assert read_tag(path, "title") == ["A title"] and read_tag(path, "artist") == ["An artist"]
    assert read_tag(library / HAND_TAGGED, "genre") == ["Jazz"]
    assert {p.name: audio_content_sha256(p) for p in library.iterdir()} == audio
    assert {p.name: p.stat().st_mtime_ns for p in library.iterdir()} == mtimes
    assert sorted(p.name for p in library.iterdir()) == sorted(before)  # no temporary left

    after_write = snapshot(library)
    again = run(str(library), "--write-tags")
    assert again.exit_code == 0
    assert len(outcome_lines(again, "up to date")) == len(TAGGABLE)
    assert snapshot(library) == after_write

    overwritten = run(str(library), "--write-tags", "--overwrite", "--tag-format", "model")
    assert overwritten.exit_code == 0, overwritten.output
    model_names = {name: genre for genre, name in TAG_NAMES.items()}
    for path in taggable:
        assert read_tag(path, "genre") == [model_names[g] for g in genres[path]], path.name
    assert read_tag(library / HAND_TAGGED, "genre")[0] == "electronic"

    restored = run("--restore-tags", str(library))
    assert restored.exit_code == 0, restored.output
    assert len(outcome_lines(restored, "restored")) == len(TAGGABLE) + 1
    for path in taggable:
        assert read_tag(path, "genre") == [], path.name
        assert read_tag(path, "title") == ["A title"]
    assert read_tag(library / HAND_TAGGED, "genre") == ["Jazz"]
    assert {p.name: p.stat().st_mtime_ns for p in library.iterdir()} == mtimes
    assert snapshot(library) == before  # every byte of every file, after two writes


def test_a_genre_changed_by_hand_after_a_write_is_left_alone_and_kept_on_restore(
        library: Path) -> None:
    song = library / "song.opus"
    assert run(str(song), "--write-tags").exit_code == 0
    audio = mutagen.File(song)
    audio.tags["GENRE"] = ["Ambient"]
    audio.save()
    rerun = run(str(song), "--write-tags", "--tag-format", "model")
    assert "left alone" in rerun.stdout and "--overwrite replaces it" in rerun.stdout
    assert read_tag(song, "genre") == ["Ambient"]
    restore = run("--restore-tags", str(song))
    assert "--overwrite restores it anyway" in restore.stdout
    assert read_tag(song, "genre") == ["Ambient"]
    assert run("--restore-tags", str(song), "--overwrite").exit_code == 0
    assert read_tag(song, "genre") == []


def test_the_undo_history_follows_a_moved_and_renamed_file(library: Path) -> None:
    song = library / "song.m4a"
    assert run(str(song), "--write-tags", "--max-genres", "3", "--min-share", "0").exit_code == 0
    assert read_tag(song, "genre")[0] == "Electronic"
    moved = library / "elsewhere" / "renamed.m4a"
    moved.parent.mkdir()
    song.rename(moved)
    assert run(str(moved), "--write-tags", "--tag-format", "model").exit_code == 0
    assert read_tag(moved, "genre")[0] == "electronic"
    result = run("--restore-tags", str(moved))
    assert "renamed.m4a: electronic" in result.stdout and read_tag(moved, "genre") == []


def test_a_read_only_file_is_reported_and_the_rest_are_written(library: Path) -> None:
    locked, other = library / "song.mp3", library / "song.wav"
    locked.chmod(0o444)
    before = locked.read_bytes()
    result = run(str(locked), str(other), "--write-tags")
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and "song.mp3" in errors[0] and "read-only" in errors[0]
    assert "Traceback" not in result.output
    assert locked.read_bytes() == before
    assert read_tag(other, "genre") == ["Electronic"]
    assert "processed=2 written=1 skipped=0 errors=1" in result.stdout


@pytest.mark.slow
def test_emotion_fields_written_and_restored_next_to_a_genre_set_by_hand(
        library: Path) -> None:
    songs = [library / "song.mp3", library / "song.m4a", library / HAND_TAGGED,
             library / "song.wma"]
    result = run(*map(str, songs), "--write-tags", "--write-emotion", "--report",
                 str(library.parent / "report.jsonl"))
    assert result.exit_code == 0, result.output
    for song in songs:
        assert read_tag(song, "mood")[0] in {"Happy", "Tense", "Sad", "Calm"}
        assert 0 <= float(read_tag(song, "valence")[0]) <= 1
    records = [json.loads(line) for line in
               (library.parent / "report.jsonl").read_text().splitlines()]
    assert [Path(r["path"]).name for r in records] == [s.name for s in songs]
    first = records[0]
    assert first["status"] == "written" and first["proposed"]["genre"] == ["Electronic"]
    assert 0 < first["proposed"]["confidence"] <= 1
    assert first["written"]["genre"] == ["Electronic"] and "valence" in first["written"]
    assert first["existing"]["genre"] == []
    assert read_tag(library / HAND_TAGGED, "genre") == ["Jazz"]
    assert records[2]["written"].keys() == {"mood", "valence", "energy", "danceability"}
    assert "genre set by hand, left alone" in records[2]["notes"][0]
    assert run("--restore-tags", *map(str, songs)).exit_code == 0
    assert read_tag(library / HAND_TAGGED, "genre") == ["Jazz"]
    for song in songs:
        assert read_tag(song, "mood") == [] and read_tag(song, "valence") == []
        assert read_tag(song, "title") == ["A title"]


def test_an_uncertain_song_gets_no_genre_unless_forced_and_touch_sets_the_mtime(
        library: Path) -> None:
    song = library / "song.aiff"
    mtime = song.stat().st_mtime_ns
    one_genre_model = ("--weights", "genre-musicnn11")  # whose songs --uncertain-below decides
    result = run(str(song), "--write-tags", "--uncertain-below", "0.99", *one_genre_model)
    assert "no genre: uncertain" in result.stdout and read_tag(song, "genre") == []
    forced = run(str(song), "--write-tags", "--uncertain-below", "0.99", "--force-uncertain",
                 "--touch", *one_genre_model)
    assert forced.exit_code == 0 and read_tag(song, "genre") == ["Electronic"]
    assert song.stat().st_mtime_ns != mtime


@pytest.mark.parametrize("args, message", [
    (["--dry-run"], "--dry-run is for --write-tags"),
    (["--write-tags", "--restore-tags"], "not both"),
    (["--write-tags", "--url", "https://example.invalid/x"], "not --url"),
])
def test_options_that_do_not_fit_are_refused(library: Path, args: list[str],
                                             message: str) -> None:
    result = run(str(library / "song.mp3"), *args)
    assert result.exit_code == 2 and message in result.stderr


def test_ctrl_c_between_files_leaves_each_file_as_it_was_or_fully_written(
        library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tagger.library import tagfiles

    first, second = library / "song.mp3", library / "song.ogg"
    before = second.read_bytes()
    real_replace = tagfiles.os.replace
    replaced: list[str] = []

    def replace_then_interrupt(source: str, target: Path) -> None:
        if replaced:
            raise KeyboardInterrupt
        replaced.append(source)
        real_replace(source, target)

    monkeypatch.setattr(tagfiles.os, "replace", replace_then_interrupt)
    result = run(str(first), str(second), "--write-tags")
    assert result.exit_code == 130
    assert "interrupted" in result.stdout and "written=1" in result.stdout
    assert read_tag(first, "genre") == ["Electronic"]
    assert second.read_bytes() == before
    assert not [p for p in library.iterdir() if p.name.startswith(".")]
