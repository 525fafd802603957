"""The ``lse`` layout (REFERENCE 2B): x_{train,val,test}.npy (N, 80, 80, 1) log-mels.

Labels come from ``y_*_num.npy`` (integers) or the one-hot ``y_*.npy``. The
course split by spectrogram, not by song, and the files do not say which
song a spectrogram came from, so rows are independent examples here too and
the figures share the course's optimism.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tagger.datasets.splits import TEST, TRAIN, VALID, Dataset, rows_as_clips
from tagger.errors import DatasetError

FILE_SPLITS = {TRAIN: "train", VALID: "val", TEST: "test"}
# The 4-genre task's class order, as its text gives it.
FOUR_GENRES = ["classical", "disco", "metal", "rock"]


def _labels(root: Path, name: str) -> np.ndarray:
    numbers, one_hot = root / f"y_{name}_num.npy", root / f"y_{name}.npy"
    if numbers.is_file():
        return np.load(numbers).reshape(-1).astype(np.int64)
    if one_hot.is_file():
        return np.load(one_hot).argmax(axis=1).astype(np.int64)
    raise DatasetError(f"has neither y_{name}_num.npy nor y_{name}.npy", str(root))


def load(root: Path, options: dict[str, Any],
         on_clip: Callable[[str, str | None], None] | None = None) -> Dataset:
    splits = {}
    for split, name in FILE_SPLITS.items():
        path = root / f"x_{name}.npy"
        if not path.is_file():
            if split == TEST:
                continue
            raise DatasetError(f"is missing x_{name}.npy", str(root),
                               "expected x_/y_/y_*_num {train,val,test}.npy")
        features = np.load(path)
        if features.ndim == 4 and features.shape[-1] == 1:
            features = features[..., 0]
        labels = _labels(root, name)
        if len(labels) != len(features):
            raise DatasetError(f"x_{name}.npy has {len(features)} rows, labels {len(labels)}",
                               str(root))
        splits[split] = rows_as_clips(features, labels, split)
    n_classes = int(max(s.labels.max() for s in splits.values())) + 1
    classes = FOUR_GENRES if n_classes == 4 else [f"genre_{i}" for i in range(n_classes)]
    return Dataset("lse", classes, splits, None,
                   {"split": "the course's x_train/x_val/x_test files (split by spectrogram)"},
                   row_unit="spectrogram")
