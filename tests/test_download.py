"""The --url flow against a local HTTP server on 127.0.0.1 (never any other address)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from audio_fixtures import synth_song, write_audio
from click.testing import CliRunner

from tagger.cli import main
from tagger.download import cached_audio, default_cache_dir, fetch_audio, youtube_dl_options
from tagger.errors import DownloadError


class QuietHandler(SimpleHTTPRequestHandler):
    requests_served: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests_served.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, list[str], Path]]:
    root = tmp_path / "site"
    root.mkdir()
    write_audio(root / "demo-song.mp3", synth_song(4.0, 44100), 44100)
    (root / "page.html").write_text("<html><body><p>No media here.</p></body></html>")
    (root / "fake.mp3").write_text("<html>not audio at all</html>" * 20)
    served: list[str] = []
    handler = type("Handler", (QuietHandler,), {"requests_served": served})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served, root
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_options_ask_for_audio_only_without_post_processing(tmp_path: Path) -> None:
    options = youtube_dl_options(tmp_path, logger=None, on_progress=None)
    assert options["format"] == "bestaudio/best"
    assert options["postprocessors"] == []
    assert options["noplaylist"] is True
    assert options["outtmpl"].startswith(str(tmp_path))


def test_download_is_cached_by_url(server: tuple[str, list[str], Path]) -> None:
    base, served, _ = server
    url = f"{base}/demo-song.mp3"
    seen: list[int] = []
    fetched = fetch_audio(url, on_progress=lambda done, total: seen.append(done))
    assert fetched.path.is_file() and fetched.path.parent == default_cache_dir()
    assert fetched.title == "demo-song"
    assert seen and seen[-1] == fetched.path.stat().st_size
    requests_before = len(served)
    again = fetch_audio(url)
    assert again.path == fetched.path
    assert len(served) == requests_before  # no network at all the second time
    assert cached_audio(url, default_cache_dir()) == fetched


def test_cli_tags_a_url_and_names_the_song_by_its_title(
    server: tuple[str, list[str], Path], tmp_path: Path
) -> None:
    base, _, _ = server
    url = f"{base}/demo-song.mp3"
    out = tmp_path / "url.json"
    result = CliRunner().invoke(main, ["--url", url, "--json", str(out), "--quiet",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["source"] == url and record["title"] == "demo-song"
    assert len(record["seconds"]) == 4


@pytest.mark.parametrize(("path", "message"), [
    ("/missing.mp3", "404"),
    ("/page.html", "Unsupported URL"),
])
def test_failed_downloads_raise_one_clear_error(server: tuple[str, list[str], Path], path: str,
                                                message: str) -> None:
    base, _, _ = server
    with pytest.raises(DownloadError, match=message) as caught:
        fetch_audio(base + path)
    assert caught.value.source == base + path
    assert "\n" not in str(caught.value)


def test_cli_reports_a_url_that_is_not_audio_and_forgets_it(
    server: tuple[str, list[str], Path]
) -> None:
    base, _, _ = server
    url = f"{base}/fake.mp3"
    result = CliRunner().invoke(main, ["--url", url, "--device", "cpu"])
    assert result.exit_code == 1
    assert url in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert cached_audio(url, default_cache_dir()) is None


def test_unreachable_host_is_reported() -> None:
    url = "http://127.0.0.1:9/song.mp3"  # the discard port: nothing listens on loopback
    result = CliRunner().invoke(main, ["--url", url, "--device", "cpu"])
    assert result.exit_code == 1
    assert "download failed" in result.stderr and url in result.stderr
