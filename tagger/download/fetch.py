"""Fetching the audio of URLs with yt-dlp's Python API, cached by video id.

Any command that takes URLs uses two steps: ``expand_url`` turns a URL into
its entries (the video itself, or every entry of a playlist or channel page),
then ``fetch_entry`` downloads each one. Only the best audio stream is
downloaded, with no FFmpeg post-processing (PyAV decodes whatever container
arrives); live streams and recordings over the duration limit are refused
before any media is downloaded, and every download is bounded while it runs
(``tagger.download.limits``): a stream that never ends stops at the size or
duration limit, leaving no partial file behind, Ctrl-C included. YouTube's
JavaScript challenges are solved by the Deno binary of the ``deno`` package
with the yt-dlp-ejs scripts: nothing but the media is fetched at run time.

Downloads land in the cache of ``tagger.download.cache``; failures become one
line through ``tagger.download.failures``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.cookiejar
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

from tagger.download.cache import (
    FetchedAudio,
    cached_audio,
    default_cache_dir,
    discard_download,
    prepare_cache_dir,
    remember,
)
from tagger.download.failures import DEFAULT_HINT, clean_message, explain_failure
from tagger.download.limits import DownloadLimits
from tagger.errors import DownloadError
from tagger.units import clock

SOCKET_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_DURATION_SECONDS = 2 * 3600.0
DEFAULT_CACHE_MAX_BYTES = 2 * 10**9
DEFAULT_MAX_BYTES = 10**9
PLAYLIST_TYPES = ("playlist", "multi_video")
LINK_TYPES = ("url", "url_transparent")
BROWSER_SPEC = re.compile(r"(?P<name>[^+:]+)(?:\s*\+\s*(?P<keyring>[^:]+))?"
                          r"(?:\s*:\s*(?!:)(?P<profile>.+?))?(?:\s*::\s*(?P<container>.+))?")

ProgressCallback = Callable[[int, int | None], None]


@dataclass(frozen=True)
class DownloadSettings:
    """How URLs are fetched; ``None`` limits mean no limit."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES
    max_items: int | None = None
    max_duration: float | None = DEFAULT_MAX_DURATION_SECONDS
    max_bytes: int | None = DEFAULT_MAX_BYTES
    cookies: Path | None = None
    cookies_from_browser: str | None = None
    socket_timeout: float = SOCKET_TIMEOUT_SECONDS


@dataclass(frozen=True)
class MediaEntry:
    """One recording of a URL: the URL's own video, or one entry of its playlist."""

    source: str  # the URL given
    key: str  # the entry's own URL, or the page URL and the entry's id: names it, keys the cache
    title: str
    info: dict[str, Any] | None = field(default=None, repr=False, compare=False)


class _Session:
    """One yt-dlp run: keeps it quiet, collects its errors, holds its downloads to limits."""

    def __init__(self, on_progress: ProgressCallback | None,
                 limits: DownloadLimits | None) -> None:
        self.errors: list[str] = []
        self.on_progress = on_progress
        self.limits = limits

    def debug(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def error(self, message: str) -> None:
        self.errors.append(message)

    def hook(self, status: dict[str, Any]) -> None:
        state = status.get("status")
        if self.limits and state == "downloading":
            partial = status.get("tmpfilename")
            self.limits.check(Path(partial) if partial else None,
                              int(status.get("downloaded_bytes") or 0), status.get("total_bytes"))
        if self.on_progress and state in ("downloading", "finished"):
            total = status.get("total_bytes") or status.get("total_bytes_estimate")
            done = int(status.get("downloaded_bytes") or 0)
            self.on_progress(done, int(total) if total else None)


def refusal(info: dict[str, Any], source: str, max_duration: float | None) -> DownloadError | None:
    """Why ``info`` is not downloaded: a live stream, or longer than ``max_duration`` seconds."""
    status = info.get("live_status") or ("is_live" if info.get("is_live") else None)
    if status == "is_live":
        return DownloadError("is a live stream; only recordings can be tagged", source,
                             "try again once the stream has ended")
    if status == "is_upcoming":
        return DownloadError("is a live stream or premiere that has not started yet", source,
                             "try again once it has been broadcast")
    duration = info.get("duration")
    if max_duration and duration and duration > max_duration:
        return DownloadError(
            f"is {clock(duration)} long, over the --max-duration limit of {clock(max_duration)}",
            source, f"pass --max-duration {math.ceil(duration / 3600)}h, or 0 for no limit")
    return None


def browser_cookie_source(spec: str) -> tuple[str, str | None, str | None, str | None]:
    """yt-dlp's ``cookiesfrombrowser`` tuple for ``BROWSER[+KEYRING][:PROFILE][::CONTAINER]``."""
    from yt_dlp.cookies import SUPPORTED_BROWSERS, SUPPORTED_KEYRINGS

    match = BROWSER_SPEC.fullmatch(spec.strip())
    if match is None:
        raise ValueError(f"{spec!r} is not BROWSER[+KEYRING][:PROFILE][::CONTAINER]")
    name, keyring, profile, container = match.group("name", "keyring", "profile", "container")
    if name.lower() not in SUPPORTED_BROWSERS:
        known = ", ".join(sorted(SUPPORTED_BROWSERS))
        raise ValueError(f"unknown browser {name!r}; one of {known}")
    if keyring is not None and keyring.upper() not in SUPPORTED_KEYRINGS:
        raise ValueError(f"unknown keyring {keyring!r}; one of {', '.join(SUPPORTED_KEYRINGS)}")
    return name.lower(), profile, keyring and keyring.upper(), container


def javascript_runtimes() -> dict[str, dict[str, str]]:
    """The Deno binary of the ``deno`` package, or yt-dlp's default (deno on PATH) without it."""
    from deno import find_deno_bin

    try:
        return {"deno": {"path": find_deno_bin()}}
    except FileNotFoundError:
        return {"deno": {}}


def _cookie_stream(path: Path) -> io.StringIO:
    """The cookies file, checked, as a stream: yt-dlp writes cookies back to what it is given."""
    from yt_dlp.cookies import YoutubeDLCookieJar

    hint = "export the cookies again as a Netscape cookies.txt file"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DownloadError("cannot read the cookies file", str(path), hint) from error
    complaints = io.StringIO()  # yt-dlp prints bad lines straight to stderr
    try:
        with contextlib.redirect_stderr(complaints):
            YoutubeDLCookieJar(io.StringIO(text)).load()
    except http.cookiejar.LoadError as error:
        raise DownloadError("is not a Netscape cookies.txt file", str(path), hint) from error
    if complaints.getvalue():
        reason = clean_message(complaints.getvalue()).replace("skipping cookie file entry due to ",
                                                              "a line of ")
        raise DownloadError(f"is not a Netscape cookies.txt file: {reason}", str(path), hint)
    return io.StringIO(text)


def youtube_dl_options(settings: DownloadSettings, logger: Any,
                       progress_hook: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    """The parameters of every yt-dlp run."""
    browser = settings.cookies_from_browser
    return {
        "format": "bestaudio/best",
        "restrictfilenames": True,
        "noplaylist": True,  # a video URL with &list= means the video; playlist URLs still expand
        "extract_flat": "in_playlist",
        "playlist_items": f"1:{settings.max_items}" if settings.max_items else None,
        "postprocessors": [],
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": logger,
        "progress_hooks": [progress_hook] if progress_hook else [],
        "socket_timeout": settings.socket_timeout,
        "retries": 2,
        "updatetime": False,  # a cached file's time is when it was fetched, not the server's
        "cachedir": False,
        "js_runtimes": javascript_runtimes(),
        "remote_components": [],
        "cookiefile": _cookie_stream(settings.cookies) if settings.cookies else None,
        "cookiesfrombrowser": browser_cookie_source(browser) if browser else None,
    }


@contextlib.contextmanager
def _yt_dlp(source: str, settings: DownloadSettings, on_progress: ProgressCallback | None = None,
            limits: DownloadLimits | None = None, **extra: Any) -> Iterator[Any]:
    """A YoutubeDL whose failures become one-line errors."""
    import yt_dlp

    session = _Session(on_progress, limits)
    options = {**youtube_dl_options(settings, session, session.hook), **extra}
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            yield ydl
    except yt_dlp.utils.YoutubeDLError as error:
        raise explain_failure(session.errors[-1] if session.errors else str(error),
                              source) from error


def _entry_key(source: str, page: dict[str, Any], entry: dict[str, Any]) -> str:
    if entry.get("_type") in LINK_TYPES:
        return str(entry["url"])
    own = entry.get("webpage_url")
    if own and own not in (source, page.get("webpage_url")):
        return str(own)
    return f"{source}#{entry['id']}"


def _title(info: dict[str, Any], key: str) -> str:
    return str(info.get("title") or info.get("id") or key)


def _playlist_entries(source: str, page: dict[str, Any]) -> Iterator[MediaEntry]:
    for entry in page.get("entries") or []:
        if not entry:  # an entry yt-dlp could not list
            continue
        if entry.get("_type") in PLAYLIST_TYPES:  # a channel's tabs, a playlist of playlists
            yield from _playlist_entries(source, entry)
        else:
            key = _entry_key(source, page, entry)
            yield MediaEntry(source, key, _title(entry, key), entry)


def expand_url(url: str, settings: DownloadSettings | None = None) -> list[MediaEntry]:
    """The recordings of ``url``: its video (no network when cached), or its playlist's entries.

    A playlist or channel page gives at most ``settings.max_items`` entries, listed
    without downloading or even opening them.
    """
    settings = settings or DownloadSettings()
    if (cached := cached_audio(url, settings.cache_dir)) is not None:
        return [MediaEntry(url, url, cached.title)]
    with _yt_dlp(url, settings) as ydl:
        info = ydl.extract_info(url, download=False)
    if info.get("_type") not in PLAYLIST_TYPES:
        return [MediaEntry(url, url, _title(info, url), info)]
    entries = list(islice(_playlist_entries(url, info), settings.max_items))
    if not entries:
        raise DownloadError("is an empty playlist", url, DEFAULT_HINT)
    return entries


def fetch_entry(entry: MediaEntry, settings: DownloadSettings | None = None,
                on_progress: ProgressCallback | None = None) -> FetchedAudio:
    """Download the best audio of one entry (or reuse the cached copy)."""
    settings = settings or DownloadSettings()
    if (cached := cached_audio(entry.key, settings.cache_dir)) is not None:
        remember(cached, settings.cache_dir, settings.cache_max_bytes)
        return cached
    info = entry.info or {"_type": "url", "url": entry.key}
    if (refused := refusal(info, entry.key, settings.max_duration)) is not None:
        raise refused
    settings = replace(settings, cache_dir=prepare_cache_dir(settings.cache_dir))
    tag = hashlib.sha256(entry.key.encode()).hexdigest()[:12]
    try:
        path, result = _download(entry.key, info, settings, tag, on_progress)
    except BaseException:  # a failure or Ctrl-C: nothing half-downloaded stays
        discard_download(settings.cache_dir, tag)
        raise
    discard_download(settings.cache_dir, tag, keep=path)
    fetched = FetchedAudio(url=entry.key, path=path, title=_title(result, entry.key),
                           video_id=str(result["id"]), extractor=str(result.get("extractor_key")))
    remember(fetched, settings.cache_dir, settings.cache_max_bytes)
    return fetched


def _download(key: str, info: dict[str, Any], settings: DownloadSettings, tag: str,
              on_progress: ProgressCallback | None) -> tuple[Path, dict[str, Any]]:
    """Download ``info`` into the cache as ``EXTRACTOR-ID-TAG.EXT``: its path and full info."""
    limits = DownloadLimits(key, settings.max_bytes, settings.max_duration)
    refusals: list[DownloadError] = []

    def match_filter(full_info: dict[str, Any], *, incomplete: bool) -> str | None:
        """Checks what only full extraction tells (a playlist lists less), before downloading."""
        if (refused := refusal(full_info, key, settings.max_duration)) is not None:
            refusals.append(refused)
            return refused.what
        if full_info.get("duration"):  # checked here: no need to measure it while downloading
            limits.max_seconds = None
        return None

    outtmpl = str(settings.cache_dir / f"%(extractor)s-%(id)s-{tag}.%(ext)s")
    with _yt_dlp(key, settings, on_progress, limits, outtmpl=outtmpl,
                 match_filter=match_filter) as ydl:
        result = ydl.process_ie_result(info, download=True)
        if refusals:
            raise refusals[-1]
        if result.get("_type") in PLAYLIST_TYPES:
            raise DownloadError("is a playlist inside the playlist", key,
                                "pass its URL to --url on its own")
        downloads = result.get("requested_downloads") or [{}]
        path = Path(downloads[0].get("filepath") or ydl.prepare_filename(result))
    if not path.is_file():
        raise DownloadError("download produced no file", key, DEFAULT_HINT)
    return path, result


def fetch_audio(url: str, settings: DownloadSettings | None = None,
                on_progress: ProgressCallback | None = None) -> FetchedAudio:
    """Download the audio of a URL that holds one recording (a playlist is refused)."""
    settings = settings or DownloadSettings()
    entries = expand_url(url, replace(settings, max_items=2))
    if len(entries) > 1:
        raise DownloadError("is a playlist, not one recording", url,
                            "tag it with genre-tag --url, which tags every entry")
    return fetch_entry(entries[0], settings, on_progress)
