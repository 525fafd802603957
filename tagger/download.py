"""Fetching the audio of URLs with yt-dlp's Python API, cached by video id.

Any command that takes URLs uses two steps: ``expand_url`` turns a URL into
its entries (the video itself, or every entry of a playlist or channel page),
then ``fetch_entry`` downloads each one. Only the best audio stream is
downloaded, with no FFmpeg post-processing (PyAV decodes whatever container
arrives); live streams and recordings over the duration limit are refused
before any media is downloaded. YouTube's JavaScript challenges are solved by
the Deno binary of the ``deno`` package with the yt-dlp-ejs scripts: nothing
but the media is fetched at run time.

Files live in the user cache folder as ``EXTRACTOR-ID-HASH.EXT`` (the hash of
the URL keeps two sites' ``song.mp3`` apart); an index maps
each URL (or playlist entry) to its file and when it was last used, so asking
for the same URL again touches no network, and the least recently used files
go once the cache outgrows its cap.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.cookiejar
import io
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import platformdirs

from tagger.atomic import atomic_write_text
from tagger.errors import DownloadError, OutputError
from tagger.units import clock

INDEX_FILE = "index.json"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
SOCKET_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_DURATION_SECONDS = 2 * 3600.0
DEFAULT_CACHE_MAX_BYTES = 2 * 10**9
PLAYLIST_TYPES = ("playlist", "multi_video")
LINK_TYPES = ("url", "url_transparent")
DEFAULT_HINT = "check the URL opens in a browser, or download the audio and pass the file"
SIGN_IN_HINT = ("pass --cookies-from-browser NAME of a browser signed in to an account that "
                "may watch it, or --cookies FILE")
BROWSER_SPEC = re.compile(r"(?P<name>[^+:]+)(?:\s*\+\s*(?P<keyring>[^:]+))?"
                          r"(?:\s*:\s*(?!:)(?P<profile>.+?))?(?:\s*::\s*(?P<container>.+))?")

# (pattern in yt-dlp's message, what went wrong, what to try), the first match wins
FAILURES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), what, hint) for pattern, what, hint in (
        (r"failed to load cookies", "could not load the browser's cookies",
         "close the browser and check the name and profile given to --cookies-from-browser, "
         "or pass --cookies FILE"),
        (r"private video|video is private", "is a private video", SIGN_IN_HINT),
        (r"members[- ]only|join this channel", "is for channel members only",
         "pass --cookies-from-browser NAME of a browser signed in to a member's account"),
        (r"confirm your age|age[- ]restricted|inappropriate for some users",
         "is age-restricted", "pass --cookies-from-browser NAME of a browser signed in to an "
         "adult's account, or --cookies FILE"),
        (r"HTTP Error 429|too many requests|rate[- ]limit|try again later",
         "the site is limiting the rate of requests (HTTP 429 Too Many Requests)",
         "wait an hour before trying again, or pass --cookies-from-browser NAME"),
        (r"not a bot|captcha", "the site asks to prove that this is not a bot",
         "pass --cookies-from-browser NAME of a browser signed in to the site, or wait and "
         "try again"),
        (r"in your country|from your location|geo[- ]?restrict",
         "is blocked in your country (geo-restricted)",
         "it can only be fetched from a country where it is available"),
        (r"live event will begin|premieres? in|will begin in",
         "is a live stream or premiere that has not started yet",
         "try again once it has been broadcast"),
        (r"HTTP Error (?:404|410)", "was not found (HTTP 404): removed, or a wrong URL",
         "check the URL"),
        (r"removed|no longer available|been terminated|video unavailable|does not exist",
         "has been removed or does not exist", "check the URL"),
        (r"HTTP Error 403", "the server refused access (HTTP 403)",
         "if it plays in a browser, pass --cookies-from-browser NAME, or update yt-dlp "
         "(pip install -U yt-dlp)"),
        (r"timed out", "the server stopped answering (timed out)",
         "check your connection and try again later"),
        (r"connection refused|name or service not known|failed to resolve|nodename nor servname"
         r"|network is unreachable|getaddrinfo", "cannot reach the server",
         "check the address and your connection"),
        (r"unsupported url", "no audio or video found on this page (unsupported URL)",
         DEFAULT_HINT),
    )
)

ProgressCallback = Callable[[int, int | None], None]


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("genre-tag")) / "downloads"


@dataclass(frozen=True)
class DownloadSettings:
    """How URLs are fetched; ``None`` limits mean no limit."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES
    max_items: int | None = None
    max_duration: float | None = DEFAULT_MAX_DURATION_SECONDS
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


@dataclass(frozen=True)
class FetchedAudio:
    url: str
    path: Path
    title: str
    video_id: str
    extractor: str


@dataclass(frozen=True)
class CacheUsage:
    folder: Path
    files: int
    size: int


class _Session:
    """One yt-dlp run: keeps it quiet, collects its errors and the file it is writing."""

    def __init__(self, on_progress: ProgressCallback | None) -> None:
        self.errors: list[str] = []
        self.partial: str | None = None
        self.on_progress = on_progress

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
        self.partial = status.get("tmpfilename") if state == "downloading" else None
        if self.on_progress and state in ("downloading", "finished"):
            total = status.get("total_bytes") or status.get("total_bytes_estimate")
            done = int(status.get("downloaded_bytes") or 0)
            self.on_progress(done, int(total) if total else None)


def clean_message(message: str) -> str:
    """yt-dlp's message on one line, without its prefixes, causes and bug-report advice."""
    message = ANSI_ESCAPE.sub("", message).strip().splitlines()[0] if message.strip() else ""
    message = re.sub(r"^(?:ERROR|WARNING):\s*(?:\[[\w:.-]+\]\s*(?:[^\s:]+:\s+)?)?", "", message)
    return re.sub(r"\s*(?:\(caused by .*|;\s*please report this issue.*)$", "", message)


def explain_failure(message: str, source: str) -> DownloadError:
    """One clear line for a yt-dlp failure: the cause and what to try."""
    for pattern, what, hint in FAILURES:
        if pattern.search(message):
            return DownloadError(what, source, hint)
    return DownloadError(f"download failed: {clean_message(message)}", source, DEFAULT_HINT)


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
        "cachedir": False,
        "js_runtimes": javascript_runtimes(),
        "remote_components": [],
        "cookiefile": _cookie_stream(settings.cookies) if settings.cookies else None,
        "cookiesfrombrowser": browser_cookie_source(browser) if browser else None,
    }


@contextlib.contextmanager
def _yt_dlp(source: str, settings: DownloadSettings, on_progress: ProgressCallback | None = None,
            **extra: Any) -> Iterator[Any]:
    """A YoutubeDL whose failures become one-line errors (and leave no partial file)."""
    import yt_dlp

    session = _Session(on_progress)
    options = {**youtube_dl_options(settings, session, session.hook), **extra}
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            yield ydl
    except yt_dlp.utils.YoutubeDLError as error:
        if session.partial:
            Path(session.partial).unlink(missing_ok=True)
        raise explain_failure(session.errors[-1] if session.errors else str(error),
                              source) from error


def _read_index(cache_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        return json.loads((cache_dir / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _write_index(cache_dir: Path, index: dict[str, dict[str, Any]]) -> None:
    atomic_write_text(cache_dir / INDEX_FILE, json.dumps(index, indent=1) + "\n")


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def cached_audio(key: str, cache_dir: Path) -> FetchedAudio | None:
    record = _read_index(cache_dir).get(key)
    if not record:
        return None
    fetched = FetchedAudio(url=record["url"], path=cache_dir / record["path"],
                           title=record["title"], video_id=record["video_id"],
                           extractor=record["extractor"])
    return fetched if fetched.path.is_file() else None


def _evict(cache_dir: Path, index: dict[str, dict[str, Any]], keep: str, max_bytes: int) -> None:
    """Delete the least recently used files until the cache fits ``max_bytes``; ``keep`` stays."""
    last_used: dict[str, float] = {}
    for record in index.values():
        last_used[record["path"]] = max(last_used.get(record["path"], 0.0),
                                        record.get("last_used", 0.0))
    sizes = {name: _file_size(cache_dir / name) for name in last_used}
    total = sum(sizes.values())
    for name in sorted(last_used, key=last_used.__getitem__):
        if total <= max_bytes:
            break
        if name != keep:
            (cache_dir / name).unlink(missing_ok=True)
            total -= sizes[name]
            for key in [key for key, record in index.items() if record["path"] == name]:
                del index[key]


def _remember(fetched: FetchedAudio, settings: DownloadSettings) -> None:
    """Mark ``fetched`` as just used in the index, then evict down to the cache cap."""
    cache_dir = settings.cache_dir
    index = {key: record for key, record in _read_index(cache_dir).items()
             if (cache_dir / record["path"]).is_file()}
    index[fetched.url] = {**asdict(fetched), "path": fetched.path.name, "last_used": time.time()}
    _evict(cache_dir, index, fetched.path.name, settings.cache_max_bytes)
    _write_index(cache_dir, index)


def forget(key: str, cache_dir: Path | None = None) -> None:
    """Drop ``key`` and its file from the cache (e.g. when it turned out not to be audio)."""
    cache_dir = cache_dir or default_cache_dir()
    index = _read_index(cache_dir)
    record = index.pop(key, None)
    if record:
        (cache_dir / record["path"]).unlink(missing_ok=True)
        _write_index(cache_dir, index)


def cache_usage(cache_dir: Path | None = None) -> CacheUsage:
    """How many files the download cache holds and their total size in bytes."""
    cache_dir = cache_dir or default_cache_dir()
    files = [path for path in cache_dir.glob("*") if path.is_file() and path.name != INDEX_FILE]
    return CacheUsage(cache_dir, len(files), sum(_file_size(path) for path in files))


def clear_cache(cache_dir: Path | None = None) -> CacheUsage:
    """Delete every cached download; returns what was removed."""
    usage = cache_usage(cache_dir)
    try:
        for path in usage.folder.glob("*"):
            if path.is_file():
                path.unlink()
    except OSError as error:
        raise OutputError(f"cannot delete: {error.strerror or error}", str(usage.folder),
                          "check the folder's permissions") from error
    return usage


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
        _remember(cached, settings)
        return cached
    info = entry.info or {"_type": "url", "url": entry.key}
    if (refused := refusal(info, entry.key, settings.max_duration)) is not None:
        raise refused
    refusals: list[DownloadError] = []

    def match_filter(full_info: dict[str, Any], *, incomplete: bool) -> str | None:
        """Checks what only full extraction tells (a playlist lists less), before downloading."""
        if (refused := refusal(full_info, entry.key, settings.max_duration)) is not None:
            refusals.append(refused)
            return refused.what
        return None

    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(entry.key.encode()).hexdigest()[:12]
    outtmpl = str(settings.cache_dir / f"%(extractor)s-%(id)s-{digest}.%(ext)s")
    with _yt_dlp(entry.key, settings, on_progress, outtmpl=outtmpl,
                 match_filter=match_filter) as ydl:
        result = ydl.process_ie_result(info, download=True)
        if refusals:
            raise refusals[-1]
        if result.get("_type") in PLAYLIST_TYPES:
            raise DownloadError("is a playlist inside the playlist", entry.key,
                                "pass its URL to --url on its own")
        downloads = result.get("requested_downloads") or [{}]
        path = Path(downloads[0].get("filepath") or ydl.prepare_filename(result))
    if not path.is_file():
        raise DownloadError("download produced no file", entry.key, DEFAULT_HINT)
    fetched = FetchedAudio(url=entry.key, path=path, title=_title(result, entry.key),
                           video_id=str(result["id"]), extractor=str(result.get("extractor_key")))
    _remember(fetched, settings)
    return fetched


def fetch_audio(url: str, settings: DownloadSettings | None = None,
                on_progress: ProgressCallback | None = None) -> FetchedAudio:
    """Download the audio of a URL that holds one recording (a playlist is refused)."""
    settings = settings or DownloadSettings()
    entries = expand_url(url, replace(settings, max_items=2))
    if len(entries) > 1:
        raise DownloadError("is a playlist, not one recording", url,
                            "tag it with genre-tag --url, which tags every entry")
    return fetch_entry(entries[0], settings, on_progress)
