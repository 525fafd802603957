"""Regenerate examples/demo-song.mp3: 30 s of synthetic drums, bass and chords.

The demo is made by this project (same licence as the code), so the README's
first command needs no third-party recording. Run from the repository root:
    python examples/make_demo_song.py
"""

from __future__ import annotations

import sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(root / "benchmarks"))
from bench_pipeline import write_mp3  # noqa: E402

if __name__ == "__main__":
    print(write_mp3(root / "examples" / "demo-song.mp3", 30, bit_rate=64_000))
