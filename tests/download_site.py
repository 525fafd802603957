"""A local web site on 127.0.0.1 (never any other address) for the download tests.

Besides static files it has pages that misbehave the way real servers do: an
HTTP status, a body that stalls, one that ends before its Content-Length, and
streams that never end (bounded here in bytes and time, so a test always stops).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from audio_fixtures import synth_song, write_audio

STALL_SECONDS = 10  # a stalling or endless handler gives up by itself after this long
STREAM_BYTES = 64 * 10**6  # an endless handler sends at most this much
LOOP_SECONDS = 2.0  # the length of the MP3 an endless stream repeats


@dataclass
class Site:
    base: str
    root: Path
    served: list[str] = field(default_factory=list)
    cookies: list[str | None] = field(default_factory=list)
    streamed: list[int] = field(default_factory=list)  # bytes sent by each endless stream
    stop: threading.Event = field(default_factory=threading.Event)
    # called by an endless stream with the bytes it has sent so far
    on_stream: list[Callable[[int], None]] = field(default_factory=list)


class SiteHandler(SimpleHTTPRequestHandler):
    """Static files and:

    /status/CODE answers CODE; /stall.mp3 sends a little and then stalls;
    /short.mp3 declares 100 kB, sends 2 kB and closes; /endless.mp3 repeats an
    MP3 with no Content-Length (an internet radio); /huge.mp3 does the same
    under a Content-Length of 10 GB.
    """

    site: Site

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.site.served.append(self.path)
        self.site.cookies.append(self.headers.get("Cookie"))
        if match := re.fullmatch(r"/status/(\d{3})(?:\.\w+)?", self.path):
            self.send_response(int(match.group(1)))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/stall.mp3":
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"\xff\xfb\x90\x00" + bytes(2000))
            self.wfile.flush()
            self.site.stop.wait(STALL_SECONDS)
        elif self.path == "/short.mp3":
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\xff\xfb\x90\x00" + bytes(2000))
            self.close_connection = True
        elif self.path in ("/endless.mp3", "/huge.mp3"):
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            if self.path == "/huge.mp3":
                self.send_header("Content-Length", str(10 * 10**9))
            self.end_headers()
            self.stream(mp3_frames(self.site.root / "loop.mp3"))
        else:
            super().do_GET()

    def stream(self, loop: bytes) -> None:
        """Repeat ``loop`` until the client hangs up, or the byte or time bound is reached."""
        sent = 0
        deadline = time.monotonic() + STALL_SECONDS
        with contextlib.suppress(OSError):
            while (sent < STREAM_BYTES and time.monotonic() < deadline
                   and not self.site.stop.is_set()):
                self.wfile.write(loop)
                sent += len(loop)
                for callback in self.site.on_stream:
                    callback(sent)
        self.site.streamed.append(sent)
        self.close_connection = True


def mp3_frames(path: Path) -> bytes:
    """The MP3 frames of ``path`` without its ID3v2 tag: a piece of a continuous stream."""
    data = path.read_bytes()
    if data[:3] == b"ID3":
        size = sum((byte & 0x7F) << (7 * (3 - i)) for i, byte in enumerate(data[6:10]))
        data = data[10 + size:]
    return data


def audio_page(title: str, sources: list[str]) -> str:
    """An HTML page with one <audio> element per source: yt-dlp lists it as a playlist."""
    players = "".join(f'<audio controls><source src="{src}" type="audio/mpeg"></audio>'
                      for src in sources)
    return f"<html><head><title>{title}</title></head><body>{players}</body></html>"


def json_ld_page(media_url: str, duration: str) -> str:
    """A page whose schema.org AudioObject gives the media URL and its duration."""
    data = {"@context": "https://schema.org", "@type": "AudioObject", "name": "Long mix",
            "contentUrl": media_url, "encodingFormat": "audio/mpeg", "duration": duration}
    script = f'<script type="application/ld+json">{json.dumps(data)}</script>'
    return f"<html><head>{script}</head></html>"


def podcast_feed(base: str, durations: list[str]) -> str:
    """An RSS feed whose items carry itunes:duration: a playlist that tells lengths up front."""
    items = "".join(
        f"<item><title>Episode {i}</title><enclosure url='{base}/song-{i}.mp3' type='audio/mpeg'/>"
        f"<itunes:duration>{duration}</itunes:duration></item>"
        for i, duration in enumerate(durations))
    return ("<?xml version='1.0'?><rss version='2.0' "
            "xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'><channel>"
            f"<title>Feed</title>{items}</channel></rss>")


@contextlib.contextmanager
def serve_site(tmp_path: Path) -> Iterator[Site]:
    """The site, serving from ``tmp_path / "site"`` on a free port of 127.0.0.1."""
    root = tmp_path / "site"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    site = Site(f"http://127.0.0.1:{httpd.server_address[1]}", root)
    httpd.RequestHandlerClass = partial(type("Handler", (SiteHandler,), {"site": site}),
                                        directory=str(root))
    write_audio(root / "demo-song.mp3", synth_song(4.0, 44100), 44100)
    write_audio(root / "loop.mp3", synth_song(LOOP_SECONDS, 44100), 44100)
    for i in range(3):
        write_audio(root / f"song-{i}.mp3", synth_song(2.0, 44100, seed=i), 44100)
    (root / "mix.html").write_text(audio_page("Mix", [f"song-{i}.mp3" for i in range(3)]))
    (root / "page.html").write_text("<html><body><p>No media here.</p></body></html>")
    (root / "fake.mp3").write_bytes(b"\x00\x01 not audio \xfe" * 200)
    (root / "long.html").write_text(json_ld_page(f"{site.base}/song-0.mp3", "PT10H"))
    (root / "feed.xml").write_text(podcast_feed(site.base, ["0:02", "10:00:00", "0:02"]))
    (root / "live.m3u8").write_text(  # no #EXT-X-ENDLIST: a live playlist
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\nsegment-0.ts\n")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.stop.set()
        httpd.shutdown()
        httpd.server_close()
