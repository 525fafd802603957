"""The --url flow against local HTTP servers on 127.0.0.1 (never any other address)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import deno
import pytest
from click.testing import CliRunner, Result
from download_site import STALL_SECONDS, Site, serve_site

from tagger.cli import main
from tagger.download import (
    DownloadSettings,
    cached_audio,
    default_cache_dir,
    expand_url,
    explain_failure,
    fetch_audio,
    fetch_entry,
    youtube_dl_options,
)
from tagger.errors import DownloadError

COOKIES = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tmember-42\n"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with serve_site(tmp_path) as served:
        yield served


def tag(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu"])


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_options_hand_yt_dlp_the_installed_deno_and_no_remote_components(tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(COOKIES)
    settings = DownloadSettings(cache_dir=tmp_path, max_items=3, cookies=cookies,
                                cookies_from_browser="firefox:default", socket_timeout=5)
    options = youtube_dl_options(settings, logger=None, progress_hook=None)
    assert options["js_runtimes"] == {"deno": {"path": deno.find_deno_bin()}}
    assert options["remote_components"] == []
    assert options["format"] == "bestaudio/best"
    assert options["postprocessors"] == []
    assert options["extract_flat"] == "in_playlist"
    assert options["playlist_items"] == "1:3"
    assert options["socket_timeout"] == 5
    assert options["cookiesfrombrowser"] == ("firefox", "default", None, None)
    assert options["cookiefile"].read() == COOKIES  # a copy: yt-dlp writes cookies back
    assert importlib.util.find_spec("yt_dlp_ejs") is not None  # the challenge-solver scripts


def test_the_installed_deno_runs_javascript_the_way_yt_dlp_runs_it() -> None:
    path = youtube_dl_options(DownloadSettings(), None, None)["js_runtimes"]["deno"]["path"]
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    major, minor = map(int, re.match(r"deno (\d+)\.(\d+)", version.stdout).groups())
    assert (major, minor) >= (2, 3)  # the oldest Deno yt-dlp supports
    flags = ["--ext=js", "--no-code-cache", "--no-prompt", "--no-remote", "--no-lock",
             "--node-modules-dir=none", "--no-config", "--no-npm", "--cached-only"]
    run = subprocess.run([path, "run", *flags, "-"], input="console.log(6 * 7)",
                         capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.strip() == "42"


def test_a_direct_link_is_downloaded_once_and_then_cached(site: Site) -> None:
    url = f"{site.base}/demo-song.mp3"
    seen: list[int] = []
    fetched = fetch_audio(url, on_progress=lambda done, total: seen.append(done))
    assert fetched.path.is_file() and fetched.path.parent == default_cache_dir()
    assert fetched.title == "demo-song"
    assert seen and seen[-1] == fetched.path.stat().st_size
    requests_before = len(site.served)
    again = fetch_audio(url)
    assert again.path == fetched.path
    assert len(site.served) == requests_before  # no network at all the second time
    assert cached_audio(url, default_cache_dir()) == fetched


@pytest.mark.slow
def test_cli_tags_a_url_and_names_the_song_by_its_title(site: Site, tmp_path: Path) -> None:
    url = f"{site.base}/demo-song.mp3"
    out = tmp_path / "url.json"
    result = tag("--url", url, "--json", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["source"] == url and record["title"] == "demo-song"
    assert len(record["seconds"]) == 4


@pytest.mark.slow
def test_every_audio_element_of_a_page_is_tagged(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "mix.jsonl"
    result = tag("--url", f"{site.base}/mix.html", "--json", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["title"] for r in records] == ["Mix (1)", "Mix (2)", "Mix (3)"]
    assert len({r["source"] for r in records}) == 3
    assert all(r["source"].startswith(f"{site.base}/mix.html#") for r in records)
    assert all(len(r["seconds"]) == 2 for r in records)


def test_a_playlist_is_listed_without_downloading_and_max_items_limits_it(site: Site) -> None:
    url = f"{site.base}/mix.html"
    entries = expand_url(url, DownloadSettings(max_items=2))
    assert [entry.title for entry in entries] == ["Mix (1)", "Mix (2)"]
    assert site.served == ["/mix.html"]
    fetched = fetch_entry(entries[1])
    assert fetched.title == "Mix (2)" and site.served[-1] == "/song-1.mp3"
    with pytest.raises(DownloadError, match="is a playlist"):
        fetch_audio(url)


@pytest.mark.parametrize(("code", "fragment"), [
    (403, "refused access (HTTP 403)"),
    (404, "not found (HTTP 404)"),
    (429, "HTTP 429 Too Many Requests"),
])
def test_http_errors_get_one_line_naming_the_cause(site: Site, code: int, fragment: str) -> None:
    url = f"{site.base}/status/{code}.mp3"
    assert_one_line_error(tag("--url", url), url, fragment)


@pytest.mark.slow
def test_a_stalled_server_times_out_quickly_and_leaves_no_partial_file(site: Site) -> None:
    settings = DownloadSettings(socket_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="timed out") as caught:
        fetch_audio(f"{site.base}/stall.mp3", settings)
    assert time.monotonic() - started < STALL_SECONDS
    assert "\n" not in str(caught.value)
    assert "/stall.mp3" in site.served
    assert not list(settings.cache_dir.glob("*.part"))


def test_a_body_that_is_not_audio_is_reported_and_forgotten(site: Site) -> None:
    url = f"{site.base}/fake.mp3"
    result = tag("--url", url)
    assert_one_line_error(result, url)
    assert "/fake.mp3" in site.served  # it was downloaded, then refused by the decoder
    assert cached_audio(url, default_cache_dir()) is None
    assert not list(default_cache_dir().glob("generic-fake*"))


def test_a_page_without_media_is_one_clear_error(site: Site) -> None:
    url = f"{site.base}/page.html"
    with pytest.raises(DownloadError, match="no audio or video found") as caught:
        expand_url(url)
    assert caught.value.source == url


def test_a_live_stream_is_refused_before_downloading(site: Site) -> None:
    url = f"{site.base}/live.m3u8"
    assert_one_line_error(tag("--url", url), url, "is a live stream")
    assert "/segment-0.ts" not in site.served


def test_an_overlong_recording_is_refused_before_downloading(site: Site) -> None:
    url = f"{site.base}/long.html"
    assert_one_line_error(tag("--url", url), url, "10:00:00 long", "--max-duration 10h")
    assert "/song-0.mp3" not in site.served
    fetched = fetch_audio(url, DownloadSettings(max_duration=None))
    assert fetched.path.is_file() and "/song-0.mp3" in site.served


@pytest.mark.slow
def test_playlist_entries_over_the_limit_are_refused_one_by_one(site: Site,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "feed.jsonl"
    result = tag("--url", f"{site.base}/feed.xml", "--json", str(out), "--quiet",
                 "--max-duration", "90m")
    assert result.exit_code == 1
    assert [json.loads(line)["title"] for line in out.read_text().splitlines()] == [
        "Episode 0", "Episode 2"]
    assert f"{site.base}/song-1.mp3: is 10:00:00 long" in result.stderr
    assert "2 of 3 inputs tagged, 1 failed" in result.stderr
    assert "/song-1.mp3" not in site.served


def test_cookies_reach_the_site_and_the_file_is_left_as_it_was(site: Site, tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(COOKIES)
    fetch_audio(f"{site.base}/demo-song.mp3", DownloadSettings(cookies=cookies))
    assert site.cookies and all(cookie == "session=member-42" for cookie in site.cookies)
    assert cookies.read_text() == COOKIES


@pytest.mark.parametrize("text", ["these are not cookies\n", COOKIES + "one\tfield too few\n"])
def test_a_bad_cookies_file_is_one_clear_error(site: Site, tmp_path: Path, text: str) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(text)
    result = tag("--url", f"{site.base}/demo-song.mp3", "--cookies", str(cookies))
    assert_one_line_error(result, str(cookies), "is not a Netscape cookies.txt file")
    assert site.served == []


@pytest.mark.parametrize(("message", "what", "hint"), [
    ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access to this video. "
     "Use --cookies-from-browser or --cookies for the authentication.", "private",
     "--cookies-from-browser"),
    ("ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader",
     "removed", "check the URL"),
    ("ERROR: [youtube] abc: The uploader has not made this video available in your country",
     "blocked in your country", "country"),
    ("ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate for some "
     "users. Use --cookies-from-browser or --cookies for the authentication.", "age-restricted",
     "--cookies-from-browser"),
    ("ERROR: [youtube] abc: Join this channel to get access to members-only content like this "
     "video, and other exclusive perks.", "members only", "--cookies-from-browser"),
    ("ERROR: [youtube] abc: Unable to download API page: HTTP Error 429: Too Many Requests "
     "(caused by <HTTPError 429: Too Many Requests>)", "HTTP 429", "wait"),
    ("ERROR: [youtube] abc: Video unavailable. This content isn't available, try again later. "
     "The current session has been rate-limited by YouTube for up to an hour.", "HTTP 429",
     "wait"),
    ("ERROR: [youtube] abc: Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser "
     "or --cookies for the authentication.", "not a bot", "--cookies-from-browser"),
    ("ERROR: [youtube] abc: This live event will begin in 3 hours.", "not started", "again"),
])
def test_youtube_failures_name_the_cause_and_what_to_try(message: str, what: str,
                                                         hint: str) -> None:
    error = explain_failure(message, "https://www.youtube.com/watch?v=abc")
    assert what in error.what and hint in error.hint
    assert "\n" not in error.message


def test_an_unknown_failure_keeps_yt_dlp_s_reason_on_one_line() -> None:
    error = explain_failure("ERROR: [generic] x: Something odd happened (caused by <Oops>); "
                            "please report this issue on https://example.invalid\nmore", "u")
    assert error.what == "download failed: Something odd happened"


@pytest.mark.parametrize(("message", "reason"), [
    ("ERROR: \r[download] Got error: oops", "Got error: oops"),  # yt-dlp's progress-line \r
    ("ERROR: \r", "yt-dlp gave no reason"),
    ("ERROR: [generic] x: Odd thing. Use --extractor-args generic:impersonate to fix it. "
     "Use --cookies FILE if it needs signing in.",
     "Odd thing. Use --cookies FILE if it needs signing in."),
])
def test_an_unknown_failure_gives_a_reason_and_no_advice_we_cannot_follow(message: str,
                                                                          reason: str) -> None:
    error = explain_failure(message, "u")
    assert error.what == f"download failed: {reason}"
    assert error.hint


def test_a_body_cut_short_names_the_cause_and_leaves_no_partial_file(site: Site) -> None:
    url = f"{site.base}/short.mp3"
    result = tag("--url", url)
    assert_one_line_error(result, url, "closed the connection before sending the whole file",
                          "try again later")
    assert [path.name for path in default_cache_dir().iterdir()] == []


def test_a_file_url_points_to_passing_the_path(tmp_path: Path) -> None:
    song = tmp_path / "song.mp3"
    song.write_bytes(b"\xff\xfb\x90\x00" + bytes(2000))
    result = tag("--url", song.as_uri())
    assert_one_line_error(result, song.as_uri(), "is a file on this computer",
                          "without --url: genre-tag PATH")
    assert "--enable-file-urls" not in result.stderr


def test_the_cache_keeps_under_its_cap_by_evicting_the_least_recently_used(site: Site) -> None:
    entries = expand_url(f"{site.base}/mix.html")
    sizes = [(site.root / f"song-{i}.mp3").stat().st_size for i in range(3)]
    settings = DownloadSettings(cache_max_bytes=sum(sizes) - min(sizes) + 1)
    first, second = fetch_entry(entries[0], settings), fetch_entry(entries[1], settings)
    assert fetch_entry(entries[0], settings) == first  # a cache hit makes it the most recent
    third = fetch_entry(entries[2], settings)
    assert first.path.is_file() and third.path.is_file()
    assert not second.path.exists()
    assert cached_audio(entries[1].key, settings.cache_dir) is None


def test_cache_info_and_clear(site: Site) -> None:
    fetch_audio(f"{site.base}/demo-song.mp3")
    info = CliRunner().invoke(main, ["cache", "info"])
    assert info.exit_code == 0
    assert str(default_cache_dir()) in info.output and "1 files" in info.output
    cleared = CliRunner().invoke(main, ["cache", "clear"])
    assert cleared.exit_code == 0 and "removed 1 files" in cleared.output
    assert "0 files" in CliRunner().invoke(main, ["cache", "info"]).output


@pytest.mark.parametrize("args", [
    ["--max-duration", "2 weeks"], ["--cache-max", "lots"], ["--max-items", "0"],
    ["--cookies-from-browser", "netscape"],
])
def test_bad_download_options_are_usage_errors(args: list[str]) -> None:
    result = tag("--url", "http://127.0.0.1:9/x.mp3", *args)
    assert result.exit_code == 2 and "Invalid value" in result.stderr


def test_unreachable_host_is_reported() -> None:
    url = "http://127.0.0.1:9/song.mp3"  # the discard port: nothing listens on loopback
    assert_one_line_error(tag("--url", url), url, "cannot reach the server")
