"""The download cache: files named ``EXTRACTOR-ID-HASH.EXT`` and an index of them.

The index maps each URL (or playlist entry) to its file and when it was last
used, so asking for the same URL again touches no network, and the least
recently used files go once the cache outgrows its cap.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs

from tagger.atomic import atomic_write_text
from tagger.errors import OutputError

INDEX_FILE = "index.json"


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("genre-tag")) / "downloads"


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


def remember(fetched: FetchedAudio, cache_dir: Path, max_bytes: int) -> None:
    """Mark ``fetched`` as just used in the index, then evict down to ``max_bytes``."""
    index = {key: record for key, record in _read_index(cache_dir).items()
             if (cache_dir / record["path"]).is_file()}
    index[fetched.url] = {**asdict(fetched), "path": fetched.path.name, "last_used": time.time()}
    _evict(cache_dir, index, fetched.path.name, max_bytes)
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
