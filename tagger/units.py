"""Formatting of durations for people."""

from __future__ import annotations


def clock(seconds: float) -> str:
    """``mm:ss``, or ``h:mm:ss`` from one hour on."""
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes:02d}:{rest:02d}"
