"""Watching a run from outside: what it has stored so far."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def stored_results(database: Path) -> int:
    """How many songs the results cache ``database`` holds (0 before it is made)."""
    if not database.is_file():
        return 0
    try:
        with sqlite3.connect(database, timeout=10) as connection:
            return connection.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # not made yet
        return 0
