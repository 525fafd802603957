"""Damaged, full, missing and unwritable stores: the results cache, the download cache and
the parts of a batch's RESULTS_DIR. Each gives one warning (or one error line where the run
truly cannot go on), and the run goes on: a cache is only a cache.

The runs are real ``python -m tagger`` processes (``--jobs 2`` starts real workers); a
full disk is a file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored: writes fail with
EFBIG) or a small tmpfs where this machine lets the tests mount one.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio_fixtures import synth_song, write_audio
from damage import damage_middle
from download_site import serve_site

from tagger.results_cache import default_results_cache_path

ROOT = Path(__file__).resolve().parents[1]
TITLES = ["a", "b", "c", "d"]


def genre_tag(*args: str, file_size_limit: int | None = None,
              cache_home: Path | None = None) -> subprocess.CompletedProcess:
    """``genre-tag ARGS`` in a new process (tagging on the CPU); with ``file_size_limit``, no
    file it writes may grow past that many bytes."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if cache_home is not None:
        environment["XDG_CACHE_HOME"] = str(cache_home)

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    device = [] if args[0] == "cache" else ["--device", "cpu"]
    return subprocess.run([sys.executable, "-m", "tagger", *args, *device],
                          env=environment, capture_output=True, text=True, timeout=600,
                          preexec_fn=limit_file_size if file_size_limit else None)


def titles(completed: subprocess.CompletedProcess) -> list[str]:
    """The titles of the JSON records a run printed (``--json -``)."""
    return sorted(json.loads(line)["title"] for line in completed.stdout.splitlines())


def assert_one_warning(completed: subprocess.CompletedProcess, *fragments: str) -> None:
    """The run succeeded with exactly one line on stderr: a warning holding every fragment."""
    assert completed.returncode == 0, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("genre-tag: warning: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    music = tmp_path / "music"
    music.mkdir()
    for number, title in enumerate(TITLES):
        write_audio(music / f"{title}.flac", synth_song(2.5, 44100, seed=number), 44100)
    return music


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``folder``, or skip where this machine allows no mount."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


# The results cache


def damage_results_table(path: Path) -> None:
    """Overwrite the first page of the results table (the files table stays whole), so that
    only reading a stored result fails."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        page = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'results'").fetchone()[0]
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as database:
        database.seek((page - 1) * page_size + 8)
        database.write(b"\xff" * 256)


@pytest.mark.parametrize("damage", ["middle of the file", "results table, read by workers"])
def test_damaged_results_cache_pages_give_one_warning_and_every_song(
        library: Path, damage: str) -> None:
    assert titles(genre_tag(str(library), "--json", "-", "--quiet")) == TITLES
    cache = default_results_cache_path()
    assert not Path(f"{cache}-wal").exists()  # all in the database file
    if damage == "middle of the file":
        damage_middle(cache)
        jobs = "1"
    else:
        damage_results_table(cache)
        for song in library.iterdir():  # not known unchanged: the workers hash and look up
            song.touch()
        jobs = "2"
    damaged = genre_tag(str(library), "--json", "-", "--quiet", "--jobs", jobs)
    assert_one_warning(damaged, str(cache), "results cache is damaged",
                       "the next run starts a new one")
    assert titles(damaged) == TITLES
    assert not cache.exists()
    again = genre_tag(str(library), "--json", "-", "--quiet", "--jobs", jobs)
    assert again.returncode == 0 and again.stderr == ""
    assert titles(again) == TITLES
    info = genre_tag("cache", "info")
    assert f"results: {cache}: 4 song results" in info.stdout


def test_a_file_that_is_no_database_is_replaced_after_one_warning(library: Path) -> None:
    cache = default_results_cache_path()
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"not a database at all " * 100)
    damaged = genre_tag(str(library), "--json", "-", "--quiet")
    assert_one_warning(damaged, str(cache), "damaged (file is not a database)")
    assert titles(damaged) == TITLES
    again = genre_tag(str(library), "--quiet")
    assert again.returncode == 0 and again.stderr == ""


def test_a_file_size_limit_mid_run_gives_one_warning_and_every_song(library: Path) -> None:
    """Two workers and this process all fail to write: one warning for the run."""
    limited = genre_tag(str(library), "--json", "-", "--quiet", "--jobs", "2",
                        file_size_limit=40_000)
    cache = default_results_cache_path()
    assert_one_warning(limited, str(cache), "results cache cannot be written",
                       "so this run goes on without it", "cache clear results")
    assert titles(limited) == TITLES
    again = genre_tag(str(library), "--json", "-", "--quiet")
    assert again.returncode == 0 and again.stderr == ""
    assert titles(again) == TITLES
    assert f"results: {cache}: 4 song results" in genre_tag("cache", "info").stdout


def test_a_full_disk_gives_one_warning_and_every_song(library: Path, tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "small", "48k") as small:
        full = genre_tag(str(library), "--json", "-", "--quiet", "--jobs", "2",
                         cache_home=small)
        assert_one_warning(full, str(small), "the disk is full", "free some space")
        assert titles(full) == TITLES


def test_a_cache_folder_that_cannot_be_made_gives_one_warning(library: Path,
                                                              tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "genre-tag").write_text("a file where the cache folder goes\n")
    blocked = genre_tag(str(library), "--json", "-", "--quiet", cache_home=home)
    assert_one_warning(blocked, "results cache cannot be written (Not a directory)",
                       f"make {home / 'genre-tag' / 'results'} a writable folder")
    assert titles(blocked) == TITLES


def test_a_read_only_cache_folder_gives_one_warning(library: Path, tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "cache", "16m") as home:
        assert genre_tag(str(library), "--quiet", cache_home=home).returncode == 0
        remount_read_only(home)
        library.joinpath("a.flac").touch()  # a song the cache would be written for
        read_only = genre_tag(str(library), "--json", "-", "--quiet", "--jobs", "2",
                              cache_home=home)
        assert_one_warning(read_only, "results cache cannot be written", "a writable folder")
        assert titles(read_only) == TITLES


# The download cache


def test_a_read_only_download_cache_gives_one_warning_and_every_song(tmp_path: Path) -> None:
    """A cached download is tagged from the cache, a new one from a temporary folder."""
    with serve_site(tmp_path) as site, mounted_tmpfs(tmp_path / "cache", "16m") as home:
        cached, new = f"{site.base}/demo-song.mp3", f"{site.base}/song-1.mp3"
        first = genre_tag("--url", cached, "--json", "-", "--quiet", cache_home=home)
        assert first.returncode == 0, first.stderr
        remount_read_only(home)
        read_only = genre_tag("--url", cached, "--url", new, "--json", "-", "--quiet",
                              cache_home=home)
    assert read_only.returncode == 0, read_only.stderr
    assert [json.loads(line)["title"] for line in read_only.stdout.splitlines()] == \
        ["demo-song", "song-1"]
    downloads = home / "genre-tag" / "downloads"
    lines = read_only.stderr.strip().splitlines()
    assert all(line.startswith("genre-tag: warning: ") for line in lines)
    [index] = [line for line in lines if "download cache index" in line]
    assert f"{downloads / 'index.json'}: the download cache index cannot be written (" in index
    assert "Read-only file system" in index and "writable folder" in index
    [folder] = [line for line in lines if line.startswith(f"genre-tag: warning: {downloads}: ")]
    assert "the download cache cannot be written (Read-only file system)" in folder
    assert "this run downloads to " in folder
    assert sum("results cache" in line for line in lines) == 1
    assert len(lines) == 3, read_only.stderr


def test_a_cache_folder_that_cannot_be_made_still_tags_a_url(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "genre-tag").write_text("a file where the cache folders go\n")
    with serve_site(tmp_path) as site:
        blocked = genre_tag("--url", f"{site.base}/song-2.mp3", "--json", "-", "--quiet",
                            cache_home=home)
    assert blocked.returncode == 0, blocked.stderr
    assert json.loads(blocked.stdout)["title"] == "song-2"
    assert "download cache cannot be written (Not a directory)" in blocked.stderr
    assert len(blocked.stderr.strip().splitlines()) == 2  # and the results cache's
