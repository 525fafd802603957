"""Downloads for ``--url``: yt-dlp fetches the audio (``fetch``) into a bounded cache
(``cache``), limited while it runs (``limits``); every failure is explained in one line
(``failures``). The names below are the package's API."""

from __future__ import annotations

from tagger.download.cache import (
    CacheUsage,
    FetchedAudio,
    cache_usage,
    cached_audio,
    clear_cache,
    default_cache_dir,
    forget,
)
from tagger.download.failures import explain_failure
from tagger.download.fetch import (
    DownloadSettings,
    MediaEntry,
    browser_cookie_source,
    expand_url,
    fetch_audio,
    fetch_entry,
    youtube_dl_options,
)

__all__ = [
    "CacheUsage",
    "DownloadSettings",
    "FetchedAudio",
    "MediaEntry",
    "browser_cookie_source",
    "cache_usage",
    "cached_audio",
    "clear_cache",
    "default_cache_dir",
    "expand_url",
    "explain_failure",
    "fetch_audio",
    "fetch_entry",
    "forget",
    "youtube_dl_options",
]
