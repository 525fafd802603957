"""Training data layouts, each a small module that yields the same ``Dataset``.

| layout | module | what it holds |
|---|---|---|
| audio  | ``audio.py``  | DIR/GENRE/*.audio (GTZAN layout), melgrams by our front end |
| course | ``course.py`` | {train,val,test}/{melgrams,mfccs}/{X,labels}.npy (REFERENCE 2A) |
| lse    | ``lse.py``    | x_/y_/y_*_num {train,val,test}.npy, 80 x 80 log-mels (2B) |
| ntua   | ``ntua.py``   | train/ test/ *.fused.full.npy + *_labels.txt (2D) |
| sources | ``sources.py`` | dataset folders (GTZAN, Emotify, 4Q) under one genre vocabulary |

Training and evaluation never branch on the layout: every split is features,
integer labels and clip ids (rows of one clip share an id, so evaluation can
be per clip and no clip is on both sides of a split).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tagger.choices import LAYOUTS
from tagger.errors import DatasetError
from tagger.features import FrontEndSpec

TRAIN, VALID, TEST = "train", "valid", "test"


@dataclass
class Split:
    features: np.ndarray  # (N, *input_shape) float32
    labels: np.ndarray  # (N,) int64 class index
    clip_ids: np.ndarray  # (N,) int64 index into clip_names
    clip_names: list[str]
    clip_sources: list[str] | None = None  # the dataset each clip came from, when several
    # What must stay on one side of a split, per clip (an artist where known); None: the clip.
    clip_groups: list[str] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> Split:
        return Split(self.features[rows], self.labels[rows], self.clip_ids[rows],
                     self.clip_names, self.clip_sources, self.clip_groups)


def rows_as_clips(features: np.ndarray, labels: np.ndarray, prefix: str) -> Split:
    """A split whose rows are independent examples: each row is its own clip."""
    n = len(labels)
    return Split(features.astype(np.float32, copy=False), labels.astype(np.int64),
                 np.arange(n), [f"{prefix}{i}" for i in range(n)])


@dataclass
class Dataset:
    layout: str
    classes: list[str]
    splits: dict[str, Split]
    # How to compute the features from audio; None when they came precomputed
    # by a front end we cannot reproduce (then the model cannot tag audio).
    front_end: FrontEndSpec | None
    notes: dict[str, Any] = field(default_factory=dict)
    row_unit: str = "second"  # what one row is: second, spectrogram or clip

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.splits[TRAIN].features.shape[1:])

    @property
    def context(self) -> int:
        """How many neighbouring seconds on either side each row also holds."""
        return self.front_end.context_segments if self.front_end else 0


def detect_layout(root: Path) -> str:
    """Which layout ``root`` holds, from the files it has."""
    if not root.is_dir():
        raise DatasetError("training data folder not found", str(root), "pass --data DIR")
    if (root / "train").is_dir() and any((root / "train").glob("*/X.npy")):
        return "course"
    if (root / "x_train.npy").is_file():
        return "lse"
    if (root / "train_labels.txt").is_file():
        return "ntua"
    from tagger.datasets.sources import is_sources_layout

    return "sources" if is_sources_layout(root) else "audio"


def load_dataset(root: Path, layout: str, options: dict[str, Any],
                 on_clip: Callable[[str, str | None], None] | None = None) -> Dataset:
    """Load ``root`` in ``layout`` (``auto`` detects it) with the layout's ``options``."""
    from tagger.datasets import audio, course, lse, ntua, sources

    if layout == "auto":
        layout = detect_layout(root)
    loaders = {"audio": audio.load, "course": course.load, "lse": lse.load, "ntua": ntua.load,
               "sources": sources.load}
    if layout not in loaders:
        raise DatasetError(f"unknown layout {layout!r}", str(root),
                           f"use one of: auto, {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise DatasetError("training data folder not found", str(root), "pass --data DIR")
    dataset = loaders[layout](root, options, on_clip)
    for split in (TRAIN, VALID):
        if split not in dataset.splits or len(dataset.splits[split]) == 0:
            raise DatasetError(f"has no {split} examples", str(root))
    return dataset
