"""What a library keeps through --write-tags and --restore-tags whatever else happens to it:
its bytes, what a person typed meanwhile, links, owners and attributes, and its undo
history when the undo store is gone; through real files, real mutagen writes and real
processes."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mutagen
import pytest
from audio_fixtures import FORMATS, chord, synth_song, write_audio
from click.testing import CliRunner, Result
from mutagen.id3 import ID3, TCON
from test_library_write import field_key, read_tag, set_title_and_artist

from tagger.cli import main
from tagger.library.file_swap import ChangedMeanwhile, TagWriteError
from tagger.library.genres import GenrePolicy, choose_genres
from tagger.library.tagfiles import write_fields
from tagger.library.undo import UndoStore, default_undo_path
from tagger.library.write import WriteSettings, apply_write, plan_write, read_file_tags

FIXED_FORMATS = [".mp3", ".flac", ".ogg", ".opus", ".m4a", ".wav", ".aiff"]


@pytest.fixture(autouse=True)
def private_folders(tmp_path_factory: pytest.TempPathFactory,
                    monkeypatch: pytest.MonkeyPatch) -> Path:
    """The undo store and caches out of the user's real folders."""
    folder = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(folder / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
    return folder


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder every user may write, in a place every user may reach."""
    folder = Path(tempfile.mkdtemp(prefix="genre-tag-shared-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu"])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def song(folder: Path, extension: str, seed: int = 0, genre: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"song{seed}{extension}"
    rate = FORMATS[extension][3]
    write_audio(path, synth_song(3.0, rate, seed=seed), rate)
    set_title_and_artist(path)
    if genre:
        set_genre(path, genre)
    return path


def set_genre(path: Path, genre: str) -> None:
    audio = mutagen.File(path)
    if isinstance(audio.tags, ID3):
        audio.tags.add(TCON(encoding=3, text=[genre]))
    else:
        audio.tags[field_key(audio, "genre")] = [genre]
    audio.save()


@pytest.mark.parametrize("extension", FIXED_FORMATS)
def test_restore_gives_back_every_byte_after_two_writes(tmp_path: Path, extension: str) -> None:
    path = song(tmp_path, extension, genre="Jazz")
    original = sha256(path)
    assert run(str(path), "--write-tags", "--overwrite").exit_code == 0
    assert read_tag(path, "genre") != ["Jazz"]
    assert run(str(path), "--write-tags", "--overwrite", "--tag-format", "model",
               "--write-emotion").exit_code == 0
    restored = run("--restore-tags", str(path))
    assert restored.exit_code == 0, restored.output
    assert sha256(path) == original


def test_restore_keeps_a_tag_changed_by_hand_after_the_write(tmp_path: Path) -> None:
    path = song(tmp_path, ".flac", genre="Jazz")
    assert run(str(path), "--write-tags", "--overwrite").exit_code == 0
    audio = mutagen.File(path)
    audio.tags["TITLE"] = ["Retitled"]
    audio.save()
    assert run("--restore-tags", str(path)).exit_code == 0
    assert read_tag(path, "genre") == ["Jazz"]
    assert read_tag(path, "title") == ["Retitled"]
    assert "GENRE_TAGGER" not in mutagen.File(path).tags


@pytest.mark.parametrize("had_genre", [True, False])
def test_restore_without_the_undo_store_works_from_the_files_own_field(
        tmp_path: Path, had_genre: bool) -> None:
    path = song(tmp_path, ".mp3", genre="Jazz" if had_genre else None)
    assert run(str(path), "--write-tags", "--overwrite").exit_code == 0
    default_undo_path().unlink()
    restored = run("--restore-tags", str(path))
    assert restored.exit_code == 0, restored.output
    assert "restored" in restored.stdout
    assert read_tag(path, "genre") == (["Jazz"] if had_genre else [])
    assert read_tag(path, "title") == ["A title"]
    assert "TXXX:GENRE_TAGGER" not in mutagen.File(path).tags


def test_restore_finds_a_re_encoded_files_history_by_its_path(tmp_path: Path) -> None:
    path = song(tmp_path, ".flac", genre="Jazz")
    assert run(str(path), "--write-tags", "--overwrite").exit_code == 0
    written_tags = dict(mutagen.File(path).tags)
    re_encoded = tmp_path / "new.flac"  # new audio, the same tags, put in its place
    write_audio(re_encoded, chord(3.0, 44100, root=330.0), 44100)
    audio = mutagen.File(re_encoded)
    for key, values in written_tags.items():
        audio.tags[key] = values
    audio.save()
    os.replace(re_encoded, path)
    assert run("--restore-tags", str(path)).exit_code == 0
    assert read_tag(path, "genre") == ["Jazz"]


def test_a_genre_typed_while_the_song_was_analysed_is_kept(tmp_path: Path) -> None:
    from tagger.inference import Tagger

    path = song(tmp_path, ".flac")
    tags = read_file_tags(path)
    result = Tagger.load(device="cpu").tag_file(path)
    plan = plan_write(path, tags, choose_genres(result, GenrePolicy()), result.model, None,
                      None, WriteSettings())
    set_genre(path, "Bossa Nova")  # typed by hand after genre-tag read the tags
    before = sha256(path)
    store = UndoStore()
    with pytest.raises(ChangedMeanwhile, match="changed after genre-tag read them"):
        apply_write(plan, store, WriteSettings())
    assert sha256(path) == before
    assert store.originals("any", path, by_path=True) == {}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_two_runs_at_once_write_each_file_once_and_meet_no_copies(tmp_path: Path) -> None:
    library = tmp_path / "music"
    for seed in range(12):
        song(library, [".flac", ".mp3", ".ogg"][seed % 3], seed=seed)
    command = [sys.executable, "-m", "tagger", str(library), "--write-tags", "--device", "cpu",
               "--jobs", "1", "--no-cache"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=600) for process in runs]
    assert [process.returncode for process in runs] == [0, 0], outputs
    written = sum(line.startswith("written ") for out, _ in outputs for line in out.splitlines())
    assert written == 12, outputs
    assert all("errors=0" in out for out, _ in outputs)
    assert sorted(p.name for p in library.iterdir()) == sorted(
        p.name for p in library.iterdir() if not p.name.startswith("."))


def test_a_file_with_two_hard_links_is_refused_and_both_names_keep_it(tmp_path: Path) -> None:
    path = song(tmp_path, ".flac")
    other = tmp_path / "other-name.flac"
    os.link(path, other)
    before = sha256(path)
    result = run(str(path), "--write-tags")
    assert result.exit_code == 1
    assert "has 2 hard links" in result.stderr and "song0.flac" in result.stderr
    assert sha256(path) == sha256(other) == before
    assert os.stat(path).st_ino == os.stat(other).st_ino


@pytest.mark.skipif(not hasattr(os, "setxattr"), reason="no extended attributes here")
def test_group_mode_and_extended_attributes_are_kept(tmp_path: Path) -> None:
    path = song(tmp_path, ".mp3")
    try:
        os.setxattr(path, "user.source", b"vinyl rip")
    except OSError:
        pytest.skip("this file system keeps no user extended attributes")
    os.chmod(path, 0o664)
    if os.geteuid() == 0:
        os.chown(path, -1, 4321)
    info = os.stat(path)
    assert run(str(path), "--write-tags").exit_code == 0
    assert read_tag(path, "genre")
    after = os.stat(path)
    assert (after.st_uid, after.st_gid, after.st_mode) == (info.st_uid, info.st_gid, info.st_mode)
    assert os.getxattr(path, "user.source") == b"vinyl rip"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_users_file_is_refused_not_taken_over(shared_folder: Path) -> None:
    """An ordinary user (nobody, in a forked process) who may write another user's file in
    a shared library: writing it through a copy would make it theirs."""
    path = song(shared_folder, ".flac")
    path.chmod(0o666)
    before = sha256(path)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        message = b"written"
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            write_fields(path, {"genre": ["Rock"]})
        except TagWriteError as error:
            message = error.message.encode()
        finally:
            os.write(writer, message)
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(child, 0)
    assert "belongs to another user or group" in message and "song0.flac" in message
    assert os.stat(path).st_uid == 0 and sha256(path) == before
    assert [p.name for p in shared_folder.iterdir()] == [path.name]


@pytest.mark.parametrize("command", [["--write-tags"], ["--restore-tags"], ["emotion"], []])
def test_devices_and_fifos_are_refused_before_anything_opens_them(
        tmp_path: Path, command: list[str]) -> None:
    fifo = tmp_path / "pipe.mp3"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for special in ("/dev/zero", str(fifo)):
        args = ["emotion", special] if command == ["emotion"] else [special, *command]
        result = subprocess.run([sys.executable, "-m", "tagger", *args, "--device", "cpu"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert any(special in line and ("device" in line or "pipe" in line) for line in lines)
        assert "Traceback" not in result.stderr


def test_a_dry_run_works_with_read_only_data_and_creates_no_undo_store(
        tmp_path: Path, private_folders: Path) -> None:
    path = song(tmp_path, ".flac")
    data = private_folders / "data"
    data.mkdir()
    data.chmod(0o555)
    before = sha256(path)
    try:
        dry = run(str(path), "--write-tags", "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "would write" in dry.stdout
        restore = run("--restore-tags", str(path), "--dry-run")
        assert restore.exit_code == 0, restore.output
        assert list(data.iterdir()) == [] and sha256(path) == before
    finally:
        data.chmod(0o755)


def test_a_damaged_undo_store_is_named_as_such(tmp_path: Path) -> None:
    path = song(tmp_path, ".flac")
    default_undo_path().parent.mkdir(parents=True)
    default_undo_path().write_bytes(b"not a database" * 100)
    result = run(str(path), "--write-tags")
    assert result.exit_code == 1
    assert "the undo store is damaged" in result.stderr and "move it aside" in result.stderr


def test_an_undo_store_of_0_2_0_is_used_and_one_of_a_newer_genre_tag_refused(
        tmp_path: Path) -> None:
    path = song(tmp_path, ".flac", genre="Jazz")
    default_undo_path().parent.mkdir(parents=True)
    with sqlite3.connect(default_undo_path()) as old:  # 0.2.0's store
        old.execute("CREATE TABLE original (audio_sha256 TEXT NOT NULL, path BLOB NOT NULL, "
                    "field TEXT NOT NULL, value TEXT NOT NULL, "
                    "PRIMARY KEY (audio_sha256, path, field))")
    assert run(str(path), "--write-tags", "--overwrite").exit_code == 0
    assert run("--restore-tags", str(path)).exit_code == 0
    assert read_tag(path, "genre") == ["Jazz"]
    with sqlite3.connect(default_undo_path()) as newer:
        newer.execute("PRAGMA user_version = 99")
    for args in ([str(path), "--write-tags"], ["--restore-tags", str(path), "--dry-run"]):
        result = run(*args)
        assert result.exit_code == 1
        assert "made by a newer genre-tag (upgrade genre-tag" in result.stderr


def test_copies_left_by_a_killed_run_are_removed_from_every_folder_at_the_start(
        tmp_path: Path) -> None:
    library = tmp_path / "music"
    songs = [song(library / "a", ".flac"), song(library / "b", ".mp3", seed=1)]
    leftovers = [p.parent / f".{p.name}.k1ll.genre-tag-partial{p.suffix}" for p in songs]
    for leftover, source in zip(leftovers, songs, strict=True):
        shutil.copyfile(source, leftover)
    assert run(str(library), "--write-tags").exit_code == 0
    assert not any(leftover.exists() for leftover in leftovers)


def test_a_file_whose_name_fills_the_name_limit_is_written(tmp_path: Path) -> None:
    path = song(tmp_path, ".flac")
    long_name = path.with_name("é" * 120 + "x" * 9 + ".flac")  # 254 bytes
    path.rename(long_name)
    result = run(str(long_name), "--write-tags")
    assert result.exit_code == 0, result.output
    assert read_tag(long_name, "genre")
    assert sorted(p.name for p in tmp_path.iterdir()) == [long_name.name]
