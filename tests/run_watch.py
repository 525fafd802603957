"""Watching a run from outside: waiting for a moment of it, what it has stored so far."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, what: str) -> None:
    """Return once ``condition()`` holds; fail if the run ends first."""
    deadline = time.monotonic() + 300  # a guard against a hung run, not a measurement
    while not condition():
        if process.poll() is not None:
            errors = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the run ended before {what}: {errors}")
        assert time.monotonic() < deadline, f"never got to {what}"
        time.sleep(0.01)


def stored_results(database: Path) -> int:
    """How many songs the results cache ``database`` holds (0 before it is made)."""
    if not database.is_file():
        return 0
    try:
        with sqlite3.connect(database, timeout=10) as connection:
            return connection.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # not made yet
        return 0
