"""The ``course`` layout (REFERENCE 2A): {train,val,test}/{melgrams,mfccs}/{X,labels}.npy.

The melgrams were made by the course helper's front end, which ours
reproduces, so a model trained on them can tag audio; the MFCC statistics
(13 means + 13 standard deviations per second) come with no reproducible
front end. Every row is one second of a song, but the files do not say which
song: rows are treated as independent examples, as the course did.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tagger.datasets.splits import TEST, TRAIN, VALID, Dataset, rows_as_clips
from tagger.errors import DatasetError
from tagger.features import FrontEndSpec

FOLDERS = {TRAIN: "train", VALID: "val", TEST: "test"}
FEATURES = ("melgrams", "mfccs")


def _load_array(path: Path, **kwargs: Any) -> np.ndarray:
    if not path.is_file():
        raise DatasetError("is missing from the course layout", str(path),
                           "expected {train,val,test}/{melgrams,mfccs}/{X.npy,labels.npy}; "
                           "--features mfccs trains on the MFCC half")
    try:
        return np.load(path, **kwargs)
    except (OSError, ValueError) as error:
        raise DatasetError(f"is not a readable .npy array: {error}", str(path)) from error


def load(root: Path, options: dict[str, Any],
         on_clip: Callable[[str, str | None], None] | None = None) -> Dataset:
    """Options: ``features``, ``melgrams`` (default) or ``mfccs``."""
    kind = options.get("features") or "melgrams"
    if kind not in FEATURES:
        raise DatasetError(f"unknown course features {kind!r}", str(root),
                           "use melgrams or mfccs")
    arrays = {}
    for split, folder in FOLDERS.items():
        if split == TEST and not (root / folder).is_dir():
            continue
        features = _load_array(root / folder / kind / "X.npy")
        labels = _load_array(root / folder / kind / "labels.npy").astype(str)
        if len(features) != len(labels):
            raise DatasetError(f"X.npy has {len(features)} rows but labels.npy {len(labels)}",
                               str(root / folder / kind))
        arrays[split] = (features, labels)
    classes = sorted(set(arrays[TRAIN][1]))
    unknown = {label for _, labels in arrays.values() for label in labels} - set(classes)
    if unknown:
        raise DatasetError(f"labels not seen in train: {', '.join(sorted(unknown))}", str(root))
    splits = {
        split: rows_as_clips(features, np.array([classes.index(x) for x in labels]), split)
        for split, (features, labels) in arrays.items()
    }
    front_end = FrontEndSpec() if kind == "melgrams" else None
    return Dataset("course", classes, splits, front_end,
                   {"features": kind, "split": "the course's train/val/test files"})
