"""The download cache: files named ``EXTRACTOR-ID-HASH.EXT`` and an index of them.

The index maps each URL (or playlist entry) to its file and when it was last
used, so asking for the same URL again touches no network, and the least
recently used files go once the cache outgrows its cap.

A damaged cache never stops a run: a cache folder that is a file is moved
aside, a damaged index is rebuilt from what is still readable (each with one
line on stderr), an index that cannot be written (a full disk, a read-only
folder) is one warning and the songs are tagged all the same, and files the
index does not name (left by a run that was killed mid-download) are deleted
once nothing has touched them for a while.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs

from tagger.atomic import atomic_write_text
from tagger.errors import CacheRepairedWarning, OutputError, TaggerWarning

INDEX_FILE = "index.json"
RECORD_FIELDS = ("url", "path", "title", "video_id", "extractor")
# A file the index does not name is another run's download in progress until it
# has been left untouched this long (far beyond the socket timeout).
STRAY_GRACE_SECONDS = 600.0
# The indexes this process could not write and has said so: one warning each.
_unwritable_indexes: set[Path] = set()
# Where this process downloads when the cache cannot be written (made at first need).
_temporary_folder: tempfile.TemporaryDirectory | None = None


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


def warn(message: str) -> None:
    """Say what was repaired on the way (the CLI prints it as one line)."""
    warnings.warn(CacheRepairedWarning(message), stacklevel=2)


def prepare_cache_dir(cache_dir: Path) -> Path:
    """The folder downloads go to: ``cache_dir`` (a file in its place moved aside), or,
    when it cannot be made or written, a temporary folder for this process (one warning),
    deleted when it ends."""
    if cache_dir.exists() and not cache_dir.is_dir():
        aside = cache_dir.with_name(f"{cache_dir.name}.not-a-folder")
        with contextlib.suppress(OSError):
            cache_dir.replace(aside)
            warn(f"{cache_dir}: the download cache folder was a file; moved it to {aside.name} "
                 "beside it and started an empty cache")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=cache_dir).close()
    except OSError as error:
        return _temporary_downloads(cache_dir, error)
    return cache_dir


def _temporary_downloads(cache_dir: Path, error: OSError) -> Path:
    """This process's temporary download folder, made (with a warning) at the first call."""
    global _temporary_folder
    if _temporary_folder is None:
        _temporary_folder = tempfile.TemporaryDirectory(prefix="genre-tag-downloads-")
        warnings.warn(TaggerWarning(
            f"{cache_dir}: the download cache cannot be written ({error.strerror or error}), so "
            f"this run downloads to {_temporary_folder.name} and keeps nothing (free some "
            "space, or make it a writable folder)"), stacklevel=3)
    return Path(_temporary_folder.name)


def _is_record(record: Any) -> bool:
    """Whether ``record`` is an index entry naming a file inside the cache folder."""
    if not isinstance(record, dict) or not all(
            isinstance(record.get(name), str) for name in RECORD_FIELDS):
        return False
    name = record["path"]
    plain_name = Path(name).name == name and name not in ("", ".", "..", INDEX_FILE)
    return plain_name and isinstance(record.get("last_used", 0.0), int | float)


def _read_index(cache_dir: Path) -> dict[str, dict[str, Any]]:
    """The index; a damaged one is rebuilt from its readable entries, with one line."""
    path = cache_dir / INDEX_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except json.JSONDecodeError as error:
        data, problem = None, f"not valid JSON at line {error.lineno} column {error.colno}"
    except UnicodeDecodeError:
        data, problem = None, "not UTF-8 text"
    except OSError as error:
        data, problem = None, f"unreadable: {error.strerror or error}"
    else:
        problem = None if isinstance(data, dict) else "not a JSON object"
    records = data if isinstance(data, dict) else {}
    index = {key: record for key, record in records.items() if _is_record(record)}
    if problem is None and len(index) < len(records):
        problem = f"{len(records) - len(index)} damaged entries"
    if problem is not None:
        _write_index(cache_dir, index)
        rebuilt = f"kept the {len(index)} downloads it still names" if index else "started anew"
        warn(f"{path}: the download cache index was damaged ({problem}); {rebuilt}")
    return index


def _write_index(cache_dir: Path, index: dict[str, dict[str, Any]]) -> None:
    """Write the index; one that cannot be written is a warning (once), not a failure: the
    downloads it would have named are fetched again by a later run."""
    path = cache_dir / INDEX_FILE
    try:
        atomic_write_text(path, json.dumps(index, indent=1) + "\n")
    except OutputError as error:
        if path not in _unwritable_indexes:
            _unwritable_indexes.add(path)
            warnings.warn(TaggerWarning(
                f"{path}: the download cache index cannot be written ({error.what}), so "
                f"downloads are tagged but not kept for later runs (free some space, or make "
                f"{cache_dir} a writable folder)"), stacklevel=2)


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


def _sweep_strays(cache_dir: Path, index: dict[str, dict[str, Any]]) -> None:
    """Delete the files no run has touched for a while that ``index`` does not name."""
    named = {record["path"] for record in index.values()} | {INDEX_FILE}
    cutoff = time.time() - STRAY_GRACE_SECONDS
    for path in cache_dir.iterdir():
        with contextlib.suppress(OSError):
            if path.name not in named and path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()


def discard_download(cache_dir: Path, tag: str, keep: Path | None = None) -> None:
    """Delete what one download left (its files are named ``*-TAG.*``), except ``keep``."""
    for path in cache_dir.glob(f"*-{tag}.*"):
        if keep is None or path.name != keep.name:
            path.unlink(missing_ok=True)


def remember(fetched: FetchedAudio, cache_dir: Path, max_bytes: int) -> None:
    """Mark ``fetched`` as just used in the index, then evict down to ``max_bytes``."""
    index = {key: record for key, record in _read_index(cache_dir).items()
             if (cache_dir / record["path"]).is_file()}
    index[fetched.url] = {**asdict(fetched), "path": fetched.path.name, "last_used": time.time()}
    _evict(cache_dir, index, fetched.path.name, max_bytes)
    _sweep_strays(cache_dir, index)
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
