"""Damaging a file as a bad disk or a killed writer would."""

from __future__ import annotations

from pathlib import Path


def damage_middle(path: Path) -> None:
    """Overwrite the middle third of ``path`` with other bytes."""
    data = bytearray(path.read_bytes())
    for index in range(len(data) // 3, 2 * len(data) // 3):
        data[index] ^= 0x5A
    path.write_bytes(bytes(data))


def cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
