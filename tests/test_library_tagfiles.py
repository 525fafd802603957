"""Atomic tag writes: a write that fails or is interrupted leaves the file as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from audio_fixtures import chord, write_audio
from mutagen.flac import FLAC

from tagger.audio import PARTIAL_COPY_MARK
from tagger.library import file_swap
from tagger.library.file_swap import remove_stale_copies_in
from tagger.library.tagfiles import (
    TagWriteError,
    open_tagged,
    read_fields,
    write_fields,
)


@pytest.fixture
def song(tmp_path: Path) -> Path:
    return write_audio(tmp_path / "song.flac", chord(2.0, 44100), 44100)


def fail_after_the_copy_is_tagged(monkeypatch: pytest.MonkeyPatch,
                                  error: BaseException) -> list[Path]:
    """Make the sync of the finished copy raise ``error``; returns the copies seen."""
    seen: list[Path] = []
    real_fsync = os.fsync

    def fsync(handle: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{handle}"))
        if PARTIAL_COPY_MARK in name.name:
            seen.append(name)
            assert read_fields(FLAC(name))["genre"] == ["Rock"]
            raise error
        real_fsync(handle)

    monkeypatch.setattr(file_swap.os, "fsync", fsync)
    return seen


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError(28, "No space left on device")])
def test_an_interrupted_or_failed_write_leaves_the_original_and_no_copy(
        song: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    before = song.read_bytes()
    seen = fail_after_the_copy_is_tagged(monkeypatch, error)
    expected = KeyboardInterrupt if isinstance(error, KeyboardInterrupt) else TagWriteError
    with pytest.raises(expected) as raised:
        write_fields(song, {"genre": ["Rock"]})
    assert seen, "the write never reached the copy"
    assert song.read_bytes() == before
    assert sorted(p.name for p in song.parent.iterdir()) == ["song.flac"]
    if expected is TagWriteError:
        assert "No space left" in raised.value.message and "song.flac" in raised.value.message


def test_a_copy_left_by_a_killed_run_is_removed_and_never_taken_for_audio(song: Path) -> None:
    from tagger.audio import find_audio_files

    stale = [song.parent / f".song.flac.x1y2{PARTIAL_COPY_MARK}.flac",
             song.parent / f".song.flac.x1y2{PARTIAL_COPY_MARK}"]  # as 0.2.0 named them
    for copy in stale:
        copy.write_bytes(song.read_bytes())
    assert find_audio_files(song.parent) == [song]
    assert remove_stale_copies_in(song.parent) == 2
    assert not any(copy.exists() for copy in stale)
    write_fields(song, {"genre": ["Rock"]})
    assert read_fields(open_tagged(song))["genre"] == ["Rock"]


def test_a_link_stays_a_link_and_the_mode_is_kept(song: Path) -> None:
    song.chmod(0o640)
    link = song.parent / "link.flac"
    link.symlink_to(song.name)
    write_fields(link, {"genre": ["Rock"]})
    assert link.is_symlink()
    assert read_fields(open_tagged(song))["genre"] == ["Rock"]
    assert song.stat().st_mode & 0o777 == 0o640
