"""Downloads that never end, Ctrl-C, and a damaged cache, against a site on 127.0.0.1."""

from __future__ import annotations

import _thread
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from download_site import STREAM_BYTES, Site, serve_site

from tagger.cli import main
from tagger.download import DownloadSettings, cached_audio, default_cache_dir, fetch_audio


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with serve_site(tmp_path) as served:
        yield served


def tag(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu", "--quiet"])


def one_line(result: Result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def cache_files() -> list[str]:
    """What the download cache folder holds besides its index."""
    return sorted(path.name for path in default_cache_dir().iterdir() if path.name != "index.json")


def test_an_endless_stream_stops_once_it_holds_more_than_max_duration(site: Site) -> None:
    url = f"{site.base}/endless.mp3"
    line = one_line(tag("--url", url, "--max-duration", "30s"))
    assert url in line and "over the --max-duration limit of 00:30" in line
    assert "endless live stream" in line and "pass --max-duration 1m, or 0" in line
    minutes, seconds = map(int, re.search(r"after (\d\d):(\d\d) of audio", line).groups())
    assert 30 <= 60 * minutes + seconds <= 36  # measured on the audio, a little past the limit
    assert site.streamed and site.streamed[0] < STREAM_BYTES  # we hung up, not the server
    assert cache_files() == []


def test_without_a_duration_limit_a_stream_stops_at_max_size(site: Site) -> None:
    url = f"{site.base}/endless.mp3"
    line = one_line(tag("--url", url, "--max-duration", "0", "--max-size", "2MB"))
    assert url in line and "stopped the download at 2.0 MB, the --max-size limit" in line
    assert "pass --max-size 4MB, or 0 for no limit" in line
    assert site.streamed and site.streamed[0] < STREAM_BYTES
    assert cache_files() == []


def test_a_declared_size_over_max_size_stops_at_the_first_bytes(site: Site) -> None:
    url = f"{site.base}/huge.mp3"
    line = one_line(tag("--url", url))
    assert f"{url}: is 10.0 GB, over the --max-size limit of 1.0 GB" in line
    assert "pass --max-size 10GB" in line
    assert cache_files() == []


def test_a_recording_within_the_limits_is_not_stopped(site: Site) -> None:
    fetched = fetch_audio(f"{site.base}/demo-song.mp3",
                          DownloadSettings(max_duration=5, max_bytes=10**6))
    assert fetched.path.is_file()
    assert cache_files() == [fetched.path.name]


def test_ctrl_c_during_a_download_leaves_no_partial_file(site: Site) -> None:
    interrupted: list[Path] = []

    def press_ctrl_c(sent: int) -> None:
        """Ctrl-C once the download has written 100 kB to its partial file."""
        partials = [path for path in default_cache_dir().glob("*.part")
                    if path.stat().st_size > 100_000]
        if partials and not interrupted:
            interrupted.extend(partials)
            _thread.interrupt_main()  # what Ctrl-C does to the main thread

    site.on_stream.append(press_ctrl_c)
    result = tag("--url", f"{site.base}/endless.mp3")
    assert interrupted and result.exit_code == 130, result.output
    assert result.stderr.strip() == "genre-tag: interrupted"
    assert cache_files() == []


def test_a_partial_file_left_by_a_killed_run_is_swept_once_stale(site: Site) -> None:
    cache = default_cache_dir()
    cache.mkdir(parents=True)
    stale, fresh = cache / "generic-gone-0123456789ab.mp3.part", cache / "generic-x-ab.mp3.part"
    stale.write_bytes(bytes(1000))
    fresh.write_bytes(bytes(1000))  # maybe another run's download in progress: it stays
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    fetched = fetch_audio(f"{site.base}/demo-song.mp3")
    assert cache_files() == sorted([fetched.path.name, fresh.name])


def test_a_cache_folder_that_is_a_file_is_moved_aside(site: Site) -> None:
    cache = default_cache_dir()
    cache.parent.mkdir(parents=True)
    cache.write_text("not a folder")
    url = f"{site.base}/demo-song.mp3"
    line = one_line(tag("--url", url), exit_code=0)
    assert line.startswith(f"genre-tag: warning: {cache}: the download cache folder was a file")
    assert cache.with_name("downloads.not-a-folder").read_text() == "not a folder"
    assert cached_audio(url, cache) is not None


@pytest.mark.parametrize("damage", ["truncated", "a list", "entries"])
@pytest.mark.slow
def test_a_damaged_index_is_rebuilt_with_one_line(site: Site, tmp_path: Path,
                                                  damage: str) -> None:
    url = f"{site.base}/demo-song.mp3"
    fetch_audio(url)
    requests_per_fetch = len(site.served)
    cache = default_cache_dir()
    outside = tmp_path / "outside.mp3"  # a tampered entry points here: it must survive
    outside.write_bytes(bytes(5000))
    index = json.loads((cache / "index.json").read_text())
    (cache / "index.json").write_text({
        "truncated": json.dumps(index)[:-5],
        "a list": "[]",
        "entries": json.dumps({**index, "y": {"path": 3},
                               "x": {**index[url], "path": os.path.relpath(outside, cache)}}),
    }[damage])
    line = one_line(tag("--url", url, "--cache-max", "1"), exit_code=0)
    assert f"{cache / 'index.json'}: the download cache index was damaged" in line
    assert outside.read_bytes() == bytes(5000)
    lost = damage != "entries"  # the good entries of a partly damaged index are kept
    assert (len(site.served) > requests_per_fetch) == lost
    assert set(json.loads((cache / "index.json").read_text())) == {url}
    again = tag("--url", url)
    assert again.exit_code == 0 and not again.stderr.strip()
