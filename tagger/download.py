"""Fetching the audio of a URL with yt-dlp's Python API, cached by video id.

Only the best audio stream is downloaded, with no FFmpeg post-processing
(PyAV decodes whatever container arrives). Files live in the user cache
folder as ``EXTRACTOR-ID.EXT``; an index maps each URL to its file, so
asking for the same URL again touches no network at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs

from tagger.atomic import atomic_write_text
from tagger.errors import DownloadError

INDEX_FILE = "index.json"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
SOCKET_TIMEOUT_SECONDS = 30

ProgressCallback = Callable[[int, int | None], None]


@dataclass(frozen=True)
class FetchedAudio:
    url: str
    path: Path
    title: str
    video_id: str
    extractor: str


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("genre-tag")) / "downloads"


class _ErrorCollectingLogger:
    """Keeps yt-dlp quiet; its last error becomes our one-line message."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def error(self, message: str) -> None:
        self.errors.append(message)


def clean_message(message: str) -> str:
    message = ANSI_ESCAPE.sub("", message).strip().splitlines()[0] if message.strip() else ""
    return re.sub(r"^ERROR:\s*", "", message)


def _read_index(cache_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        return json.loads((cache_dir / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _write_index(cache_dir: Path, index: dict[str, dict[str, Any]]) -> None:
    atomic_write_text(cache_dir / INDEX_FILE, json.dumps(index, indent=1) + "\n")


def cached_audio(url: str, cache_dir: Path) -> FetchedAudio | None:
    entry = _read_index(cache_dir).get(url)
    if not entry:
        return None
    fetched = FetchedAudio(**{**entry, "path": cache_dir / entry["path"]})
    return fetched if fetched.path.is_file() else None


def forget(url: str, cache_dir: Path | None = None) -> None:
    """Drop ``url`` and its file from the cache (e.g. when it turned out not to be audio)."""
    cache_dir = cache_dir or default_cache_dir()
    index = _read_index(cache_dir)
    entry = index.pop(url, None)
    if entry:
        (cache_dir / entry["path"]).unlink(missing_ok=True)
        _write_index(cache_dir, index)


def youtube_dl_options(cache_dir: Path, logger: Any,
                       on_progress: ProgressCallback | None) -> dict[str, Any]:
    def hook(status: dict[str, Any]) -> None:
        if on_progress and status.get("status") in ("downloading", "finished"):
            total = status.get("total_bytes") or status.get("total_bytes_estimate")
            on_progress(int(status.get("downloaded_bytes") or 0), int(total) if total else None)

    return {
        "format": "bestaudio/best",
        "outtmpl": str(cache_dir / "%(extractor)s-%(id)s.%(ext)s"),
        "restrictfilenames": True,
        "noplaylist": True,
        "postprocessors": [],
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": logger,
        "progress_hooks": [hook],
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "retries": 2,
        "cachedir": False,
    }


def fetch_audio(url: str, cache_dir: Path | None = None,
                on_progress: ProgressCallback | None = None) -> FetchedAudio:
    """Download the best audio of ``url`` (or reuse the cached copy)."""
    import yt_dlp

    cache_dir = cache_dir or default_cache_dir()
    if (cached := cached_audio(url, cache_dir)) is not None:
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    logger = _ErrorCollectingLogger()
    hint = "check the URL opens in a browser, or download the audio and pass the file"
    try:
        with yt_dlp.YoutubeDL(youtube_dl_options(cache_dir, logger, on_progress)) as ydl:
            info = ydl.extract_info(url, download=True)
    except yt_dlp.utils.YoutubeDLError as error:
        reason = clean_message(logger.errors[-1] if logger.errors else str(error))
        raise DownloadError(f"download failed: {reason}", url, hint) from error
    if info is None or info.get("_type") == "playlist":
        raise DownloadError("is a playlist or holds no single audio stream", url, hint)
    downloads = info.get("requested_downloads") or [{}]
    path = Path(downloads[0].get("filepath") or ydl.prepare_filename(info))
    if not path.is_file():
        raise DownloadError("download produced no file", url, hint)
    fetched = FetchedAudio(url=url, path=path, title=str(info.get("title") or info["id"]),
                           video_id=str(info["id"]), extractor=str(info.get("extractor_key")))
    index = _read_index(cache_dir)
    index[url] = {**asdict(fetched), "path": path.name}
    _write_index(cache_dir, index)
    return fetched
