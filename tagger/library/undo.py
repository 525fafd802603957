"""The undo store: what each field held before genre-tag wrote to it.

Kept in SQLite in the user data folder, keyed by the audio's checksum (``audio_content_sha256``)
so a file that is renamed, moved or retagged keeps its history. A field's value
is remembered when genre-tag writes over a value that it did not write itself;
over its own earlier value nothing changes, so the value from before the first
write survives any number of runs. Each change is committed at once, before the
file is written, so a crash never loses a value.
"""

from __future__ import annotations

import json
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
                "field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (audio_sha256, field))")
            self.connection.commit()
        except (OSError, sqlite3.Error) as error:
            raise TaggerError(f"cannot open the undo store: {error}", str(self.path),
                              "check that the folder is writable and the disk not full"
                              ) from error

    def remember(self, audio_sha256: str, originals: Mapping[str, list[str]],
                 replace: Mapping[str, bool]) -> None:
        """Store each field's value before a write: over an earlier entry only where
        ``replace[field]`` (the value now in the file is not genre-tag's own)."""
        try:
            with self.connection:
                for field, values in originals.items():
                    verb = "REPLACE" if replace.get(field) else "IGNORE"
                    self.connection.execute(
                        f"INSERT OR {verb} INTO original VALUES (?, ?, ?)",
                        (audio_sha256, field, json.dumps(values)))
        except sqlite3.Error as error:
            raise TaggerError(f"cannot update the undo store: {error}", str(self.path),
                              "check the disk; nothing was written") from error

    def originals(self, audio_sha256: str) -> dict[str, list[str]]:
        """The remembered value of each field genre-tag wrote to (none: never wrote)."""
        try:
            rows = self.connection.execute(
                "SELECT field, value FROM original WHERE audio_sha256 = ?", (audio_sha256,))
            return {field: json.loads(value) for field, value in rows}
        except sqlite3.Error as error:
            raise TaggerError(f"cannot read the undo store: {error}", str(self.path),
                              "check the file; move it away to start afresh") from error

    def close(self) -> None:
        self.connection.close()
