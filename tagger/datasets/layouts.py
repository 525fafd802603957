"""Which layout a training data folder holds, and loading it for either task.

| layout | module | what it holds |
|---|---|---|
| audio  | ``audio.py``  | DIR/GENRE/*.audio (GTZAN layout), melgrams by our front end |
| course | ``course.py`` | {train,val,test}/{melgrams,mfccs}/{X,labels}.npy (REFERENCE 2A) |
| lse    | ``lse.py``    | x_/y_/y_*_num {train,val,test}.npy, 80 x 80 log-mels (2B) |
| ntua   | ``ntua.py``   | *.fused.full.npy + train_labels.txt: genres, or emotion targets (2D) |
| 4q     | ``fourq.py``  | labels.csv with quadrants and AllMusic genres beside the audio |
| emotify | ``emotify.py`` | labels.csv with GEMS fractions and genres beside the audio |
| sources | ``sources.py`` | folders of the above under one genre vocabulary or for emotion |
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tagger.datasets import audio, course, lse, ntua, sources
from tagger.datasets.splits import TRAIN, VALID, Dataset
from tagger.errors import DatasetError
from tagger.tasks import EMOTION, GENRE

Loader = Callable[[Path, dict[str, Any], Callable[[str, str | None], None] | None], Dataset]
LOADERS: dict[str, dict[str, Loader]] = {
    GENRE: {"audio": audio.load, "course": course.load, "lse": lse.load, "ntua": ntua.load,
            "4q": sources.load, "emotify": sources.load, "sources": sources.load},
    EMOTION: {"ntua": sources.load_emotion, "4q": sources.load_emotion,
              "emotify": sources.load_emotion, "sources": sources.load_emotion},
}


def detect_layout(root: Path) -> str:
    """Which layout ``root`` holds, from the files it has."""
    if not root.is_dir():
        raise DatasetError("training data folder not found", str(root), "pass --data DIR")
    if (root / "train").is_dir() and any((root / "train").glob("*/X.npy")):
        return "course"
    if (root / "x_train.npy").is_file():
        return "lse"
    kind = sources.source_kind(root)
    if kind in sources.EMOTION_SOURCES:
        return kind
    if sources.source_folders(root, sources.EMOTION_SOURCES):
        return "sources"
    return "audio"


def load_dataset(root: Path, layout: str, options: dict[str, Any],
                 on_clip: Callable[[str, str | None], None] | None = None,
                 task: str = GENRE) -> Dataset:
    """Load ``root`` in ``layout`` (``auto`` detects it) for ``task`` with the layout's
    ``options``."""
    if layout == "auto":
        layout = detect_layout(root)
    loaders = LOADERS[task]
    if task == EMOTION and layout not in loaders:
        sources.discover_emotion_clips(root, 0, 0)  # says what an emotion folder holds
    if layout not in loaders:
        raise DatasetError(f"unknown layout {layout!r}", str(root),
                           f"use one of: auto, {', '.join(loaders)}")
    if not root.is_dir():
        raise DatasetError("training data folder not found", str(root), "pass --data DIR")
    dataset = loaders[layout](root, options, on_clip)
    for split in (TRAIN, VALID):
        if split not in dataset.splits or len(dataset.splits[split]) == 0:
            raise DatasetError(f"has no readable {split} examples", str(root),
                               "more clips, or another --valid-share")
    return dataset
