"""What every data layout yields: clips, splits of rows grouped by clip, and a dataset.

Training and evaluation never branch on the layout: every split is features,
labels and clip ids (rows of one clip share an id, so evaluation can be per
clip and no clip is on both sides of a split). Genre splits label each row
with a class; emotion splits give each clip its targets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tagger.features import FrontEndSpec

TRAIN, VALID, TEST = "train", "valid", "test"


@dataclass(frozen=True)
class Clip:
    """One audio (or spectrogram) file of a data set, with what it is labelled with."""

    path: Path
    split: str = ""
    group: str = ""  # what must stay on one side of a split (an artist); "": the clip
    label: str = ""  # its genre, "" when it has none
    key: str = ""  # a unique name, "source:file" ("": the path)
    source: str = ""  # the data set it comes from (4q, emotify, ntua; "": a genre folder)
    targets: tuple[float, ...] = ()  # emotion targets, 0-1, NaN where missing
    # The raw labels the targets come from, for reports.
    notes: dict[str, float] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        return self.key or str(self.path)


@dataclass
class Split:
    features: np.ndarray  # (N, *input_shape) float32
    labels: np.ndarray  # (N,) int64 class index (0 in emotion splits, which have targets)
    clip_ids: np.ndarray  # (N,) int64 index into clip_names
    clip_names: list[str]
    clip_sources: list[str] | None = None  # the data set each clip came from, when several
    # What must stay on one side of a split, per clip (an artist where known); None: the clip.
    clip_groups: list[str] | None = None
    clip_targets: np.ndarray | None = None  # (clips, targets) float32, NaN where missing
    clip_notes: list[dict[str, float]] | None = None  # raw labels per clip

    def __len__(self) -> int:
        return len(self.clip_ids)

    def subset(self, rows: np.ndarray) -> Split:
        """These rows, with every clip's records kept."""
        return replace(self, features=self.features[rows], labels=self.labels[rows],
                       clip_ids=self.clip_ids[rows])

    @property
    def row_targets(self) -> np.ndarray:
        """``(N, targets)``: each row's clip targets."""
        assert self.clip_targets is not None, "a split without targets"
        return self.clip_targets[self.clip_ids]


def rows_as_clips(features: np.ndarray, labels: np.ndarray, prefix: str) -> Split:
    """A split whose rows are independent examples: each row is its own clip."""
    n = len(labels)
    return Split(features.astype(np.float32, copy=False), labels.astype(np.int64),
                 np.arange(n), [f"{prefix}{i}" for i in range(n)])


def join_splits(splits: list[Split]) -> Split:
    """One split of every row of ``splits``; clip ids renumbered, per-clip records kept."""

    def joined(records: list[list[Any] | None]) -> list[Any] | None:
        return None if any(r is None for r in records) else [x for r in records for x in r]

    offsets = np.cumsum([0, *(len(s.clip_names) for s in splits)])
    targets = [s.clip_targets for s in splits]
    return Split(
        np.concatenate([s.features for s in splits]),
        np.concatenate([s.labels for s in splits]),
        np.concatenate([s.clip_ids + offset for s, offset in zip(splits, offsets, strict=False)]),
        [name for s in splits for name in s.clip_names],
        joined([s.clip_sources for s in splits]),
        [g for s in splits for g in (s.clip_groups or s.clip_names)],
        None if any(t is None for t in targets) else np.concatenate(targets),
        joined([s.clip_notes for s in splits]),
    )


def clip_means(values: np.ndarray, clip_ids: np.ndarray, n_clips: int) -> np.ndarray:
    """``(n_clips, K)``: the mean of each clip's rows of ``values`` (0 for a clip without)."""
    sums = np.zeros((n_clips, values.shape[1]))
    np.add.at(sums, clip_ids, values)
    counts = np.bincount(clip_ids, minlength=n_clips)[:, None]
    return sums / np.maximum(counts, 1)


def rows_by_clip(clip_ids: np.ndarray, n_clips: int) -> list[np.ndarray]:
    """The row indices of each clip, in order."""
    order = np.argsort(clip_ids, kind="stable")
    bounds = np.searchsorted(clip_ids[order], np.arange(n_clips + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n_clips)]


def assign_splits(clips: list[Clip], valid_share: float, seed: int) -> list[Clip]:
    """Hold out whole groups (artists or clips), seeded, until ``valid_share`` of the clips.

    No group has clips on both sides, so no second of a held-out clip, and no
    clip of a held-out 4Q artist, is trained on.
    """
    groups: dict[str, list[Clip]] = {}
    for clip in clips:
        groups.setdefault(clip.group, []).append(clip)
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    goal = round(valid_share * len(clips))
    held_out: set[str] = set()
    count = 0
    for name in names:
        if count >= goal or len(held_out) == len(names) - 1:
            break
        held_out.add(name)
        count += len(groups[name])
    return [replace(c, split=VALID if c.group in held_out else TRAIN) for c in clips]


@dataclass
class Dataset:
    layout: str
    classes: list[str]  # the genres; for emotion data, the targets
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
