"""What ``genre-tag batch`` tags: its SOURCES expanded to one song each (a file path or an
http(s) URL).

A SOURCE is a folder (its audio files, recursively), an audio file, a list file (one path
or URL a line; blank lines and ``#`` comments left out) or a Parquet or CSV table whose
column of paths or URLs is named by ``column``. Relative paths in a list or table are
relative to its folder. Files are named by their absolute paths: the same on every
machine of a cluster that mounts them in the same place. A song named twice is tagged
once.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from tagger.audio import AUDIO_EXTENSIONS, find_audio_files
from tagger.errors import TaggerError

LIST_EXTENSIONS = frozenset({".txt", ".list", ".lst", ".m3u", ".m3u8"})
TABLE_EXTENSIONS = frozenset({".parquet", ".csv"})
DEFAULT_COLUMN = "path"


@dataclass
class ExpandedSources:
    """The songs to tag, in order, and the sources that gave none: ``(source, message)``."""

    songs: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def expand_sources(sources: list[str], column: str = DEFAULT_COLUMN) -> ExpandedSources:
    """Every song of ``sources``. Raises TaggerError for a list or table that cannot be
    read (before any work); a path that is missing, or a folder without audio, is a
    failure of its own and the rest go on."""
    expanded = ExpandedSources()
    for source in sources:
        path = Path(source)
        suffix = path.suffix.lower()
        if not is_url(source) and path.is_file() and suffix in LIST_EXTENSIONS:
            entries = _list_entries(path)
        elif not is_url(source) and path.is_file() and suffix in TABLE_EXTENSIONS:
            entries = _table_entries(path, column)
        else:
            entries = [source]
        for entry in entries:
            _add_song(entry, expanded)
    expanded.songs = list(dict.fromkeys(expanded.songs))
    return expanded


def _add_song(entry: str, expanded: ExpandedSources) -> None:
    """A URL or file as it is, a folder's audio files, or a failure."""
    path = Path(entry)
    if is_url(entry):
        expanded.songs.append(entry)
    elif path.is_file():
        expanded.songs.append(os.path.abspath(path))
    elif path.is_dir():
        found = find_audio_files(path)
        if not found:
            extensions = " ".join(sorted(AUDIO_EXTENSIONS))
            expanded.failures.append(
                (entry, f"{entry}: folder holds no audio files (looked for {extensions})"))
        expanded.songs += [os.path.abspath(file) for file in found]
    else:
        expanded.failures.append((entry, f"{entry}: no such file or folder (check the path)"))


def _resolved(entry: str, folder: Path) -> str:
    return entry if is_url(entry) or Path(entry).is_absolute() else str(folder / entry)


def _list_entries(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise TaggerError(f"cannot read the list of songs: {error}", str(path),
                          "give a UTF-8 text file with one path or URL a line") from error
    entries = (line.strip() for line in lines)
    return [_resolved(entry, path.parent) for entry in entries
            if entry and not entry.startswith("#")]


def _table_entries(path: Path, column: str) -> list[str]:
    """The non-empty cells of ``column`` in a Parquet or CSV table."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as file:
                reader = csv.DictReader(file)
                names = list(reader.fieldnames or [])
                cells = [row.get(column) for row in reader] if column in names else None
        else:
            import pyarrow.parquet as parquet

            names = parquet.read_schema(path).names
            cells = (parquet.read_table(path, columns=[column]).column(column).to_pylist()
                     if column in names else None)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as error:
        raise TaggerError(f"cannot read the table of songs: {error}", str(path),
                          "give a Parquet or UTF-8 CSV file") from error
    if cells is None:
        raise TaggerError(f"has no column {column!r} (it has: {', '.join(names) or 'none'})",
                          str(path), "name the column of paths or URLs with --column")
    return [_resolved(str(cell).strip(), path.parent) for cell in cells
            if cell is not None and str(cell).strip()]
