"""The undo store: what each field held before genre-tag wrote to it.

Kept in SQLite in the user data folder, keyed by the audio's checksum
(``audio_content_sha256``) and the file's path. A file found under a new path
(moved or renamed, with the same audio) takes over the history of a path
that no longer exists, so moving a library keeps its undo history, while two
copies of the same recording keep their own. A field's value is remembered
when genre-tag writes over a value it did not write itself; over its own
earlier value the first one stays, however many runs wrote in between. Each
change is committed before the file is written, so a crash never loses a value.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from tagger.errors import TaggerError


def default_undo_path() -> Path:
    return Path(platformdirs.user_data_dir("genre-tag")) / "undo.sqlite3"


class UndoStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_undo_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(self.path)
            self.connection.execute(
                "CREATE TABLE IF NOT EXISTS original (audio_sha256 TEXT NOT NULL, "
                "path BLOB NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL, "
                "PRIMARY KEY (audio_sha256, path, field))")
            self.connection.commit()
        except (OSError, sqlite3.Error) as error:
            raise TaggerError(f"cannot open the undo store: {error}", str(self.path),
                              "check that the folder is writable and the disk not full"
                              ) from error

    def remember(self, audio_sha256: str, path: Path, before: Mapping[str, list[str]],
                 replace: Mapping[str, bool]) -> None:
        """Store each field's value ``before`` a write of ``path``: over the value already
        remembered only where ``replace[field]`` (the file's value is not genre-tag's own)."""
        remembered = self.originals(audio_sha256, path)
        merged = {**remembered, **{field: values for field, values in before.items()
                                   if replace.get(field) or field not in remembered}}
        try:
            with self.connection:
                self.connection.executemany(
                    "INSERT OR REPLACE INTO original VALUES (?, ?, ?, ?)",
                    [(audio_sha256, self.key(path), field, json.dumps(values))
                     for field, values in merged.items()])
        except sqlite3.Error as error:
            raise TaggerError(f"cannot update the undo store: {error}", str(self.path),
                              "check the disk; nothing was written") from error

    def originals(self, audio_sha256: str, path: Path) -> dict[str, list[str]]:
        """The remembered value of each field genre-tag wrote to in ``path`` (or in a file of
        the same audio at a path that is gone); empty: it never wrote to it."""
        try:
            rows = self.connection.execute(
                "SELECT path, field, value FROM original WHERE audio_sha256 = ?",
                (audio_sha256,)).fetchall()
        except sqlite3.Error as error:
            raise TaggerError(f"cannot read the undo store: {error}", str(self.path),
                              "check the file; move it away to start afresh") from error
        by_path: dict[bytes, dict[str, list[str]]] = {}
        for stored_path, field, value in rows:
            by_path.setdefault(stored_path, {})[field] = json.loads(value)
        own = self.key(path)
        if own in by_path:
            return by_path[own]
        moved_away = [p for p in sorted(by_path) if not os.path.lexists(os.fsdecode(p))]
        return by_path[moved_away[0]] if moved_away else {}

    @staticmethod
    def key(path: Path) -> bytes:
        return os.fsencode(os.path.realpath(path))

    def close(self) -> None:
        self.connection.close()
