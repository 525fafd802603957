"""The ``ntua`` layout (REFERENCE 2D): spectrograms of 30-s clips with label files.

``DIR/train_labels.txt`` and ``DIR/test_labels.txt`` (a header line, then
``FILE<TAB>Genre``) name arrays ``DIR/train/ID.fused.full.npy`` of shape
(140, T): rows 0-127 mel, 128-139 chroma. The 20 FMA genres are merged into
10 as the lab did (``GENRE_MAPPING``; genres mapped to None are dropped).
Clips are cropped or zero-padded to the longest training clip (or
``max_frames``). The test labels file may be absent; validation is always a
seeded, per-genre share of the training clips.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tagger.datasets import TEST, TRAIN, VALID, Dataset, Split
from tagger.errors import DatasetError

GENRE_MAPPING: dict[str, str | None] = {
    "Rock": "Rock", "Psych-Rock": "Rock", "Indie-Rock": None, "Post-Rock": "Rock",
    "Psych-Folk": "Folk", "Folk": "Folk", "Metal": "Metal", "Punk": "Metal",
    "Post-Punk": None, "Trip-Hop": "Trip-Hop", "Pop": "Pop", "Electronic": "Electronic",
    "Hip-Hop": "Hip-Hop", "Classical": "Classical", "Blues": "Blues",
    "Chiptune": "Electronic", "Jazz": "Jazz", "Soundtrack": None, "International": None,
    "Old-Time": None,
}
FEATURE_ROWS = {"mel": slice(0, 128), "chroma": slice(128, 140), "fused": slice(0, 140)}


def _read_labels(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream, delimiter="\t"))
    if not rows:
        raise DatasetError("is empty", str(path))
    header = [h.strip().lower() for h in rows[0]]
    if "valence" in header:
        raise DatasetError("holds emotion targets, not genres", str(path),
                           "use genre-tag retrain --task emotion")
    pairs = [(row[0].strip(), row[1].strip()) for row in rows[1:] if len(row) >= 2]
    if not pairs:
        raise DatasetError("lists no FILE<TAB>Genre rows", str(path))
    return pairs


def _array_path(folder: Path, name: str) -> Path:
    name = name.removesuffix(".gz")
    return folder / (name if name.endswith(".npy") else f"{name}.fused.full.npy")


def _fit(array: np.ndarray, frames: int) -> np.ndarray:
    out = np.zeros((frames, array.shape[1]), dtype=np.float32)
    out[: min(frames, len(array))] = array[:frames]
    return out


def load(root: Path, options: dict[str, Any],
         on_clip: Callable[[str, str | None], None] | None = None) -> Dataset:
    """Options: ``features`` (mel, chroma or fused), ``max_frames``, ``valid_share``, ``seed``."""
    rows = FEATURE_ROWS.get(options.get("features") or "mel")
    if rows is None:
        raise DatasetError(f"unknown ntua features {options.get('features')!r}", str(root),
                           "use mel, chroma or fused")
    clips: dict[str, list[tuple[str, np.ndarray, str]]] = {}
    for split, label_file, folder in ((TRAIN, "train_labels.txt", "train"),
                                      (TEST, "test_labels.txt", "test")):
        if not (root / label_file).is_file():
            continue
        for name, genre in _read_labels(root / label_file):
            merged = GENRE_MAPPING.get(genre, genre)
            if merged is None:
                continue
            path = _array_path(root / folder, name)
            if not path.is_file():
                raise DatasetError("is listed but missing", str(path))
            clips.setdefault(split, []).append((str(path), np.load(path)[rows].T, merged))
            if on_clip:
                on_clip(str(path), None)
    if TRAIN not in clips:
        raise DatasetError("has no train_labels.txt", str(root))
    classes = sorted({genre for _, _, genre in clips[TRAIN]})
    frames = options.get("max_frames") or max(len(a) for _, a, _ in clips[TRAIN])
    rng = random.Random(options.get("seed", 0))
    train, valid = [], []
    for genre in classes:
        members = [c for c in clips[TRAIN] if c[2] == genre]
        rng.shuffle(members)
        n_valid = max(1, round(options.get("valid_share", 0.2) * len(members)))
        valid += members[:n_valid]
        train += members[n_valid:]
    groups = {TRAIN: train, VALID: valid, TEST: clips.get(TEST, [])}
    splits = {
        split: Split(
            features=np.stack([_fit(a, frames) for _, a, _ in items]),
            labels=np.array([classes.index(g) if g in classes else -1 for _, _, g in items]),
            clip_ids=np.arange(len(items)),
            clip_names=[name for name, _, _ in items],
        )
        for split, items in groups.items() if items
    }
    if TEST in splits and (splits[TEST].labels < 0).any():
        raise DatasetError("test labels hold genres absent from train", str(root))
    return Dataset("ntua", classes, splits, None,
                   {"split": f"valid: seeded share {options.get('valid_share', 0.2)} of train "
                             f"clips per genre", "frames": frames}, row_unit="clip")
