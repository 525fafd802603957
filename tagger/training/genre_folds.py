"""The 17-genre clips as arrays (targets, groups, per-second embeddings) and their
group-aware folds.

Folds: whole 4Q artists and Emotify estimated album groups go to one fold, largest first, to
the fold with fewest clips of their genres. GTZAN follows its fault-filtered split: its
train clips are trained on in every fold, its valid clips dealt to the folds (the split keeps
artists apart between its sides, not within them). A seed deals the folds.
"""

from __future__ import annotations

import random

import numpy as np

from tagger.datasets.vocabulary import CLASSES, POP_ROCK, TODAY_CLASSES, GenreClip

POP_ROCK_COLUMNS = [CLASSES.index(g) for g in POP_ROCK]


class GenreData:
    """The clips' targets as arrays, and their per-second features (rows sorted by clip)."""

    def __init__(self, clips: list[GenreClip], x: np.ndarray, row_clip: np.ndarray) -> None:
        self.x, self.row_clip = x, row_clip
        self.source = np.array([c.source for c in clips])
        self.group = np.array([c.group for c in clips])
        self.ff_split = np.array([c.ff_split for c in clips])
        self.targets = np.array([c.targets.open for c in clips])
        self.closed = np.array([c.targets.closed for c in clips])
        self.partial = np.array([c.targets.partial for c in clips])
        self.outside = np.array([c.targets.outside for c in clips])
        self.usable = np.array([c.usable for c in clips])
        self.today = np.array([TODAY_CLASSES.index(c.today_label) if c.today_label else -1
                               for c in clips])
        self.bounds = np.searchsorted(row_clip, np.arange(len(clips) + 1))

    def __len__(self) -> int:
        return len(self.source)

    def rows(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the clips in ``mask``, and each row's index among those clips."""
        chosen = np.flatnonzero(mask)
        lengths = self.bounds[chosen + 1] - self.bounds[chosen]
        rows = np.concatenate([np.arange(self.bounds[c], self.bounds[c + 1]) for c in chosen])
        return rows, np.repeat(np.arange(len(chosen)), lengths)


def group_folds(data: GenreData, k: int, seed: int) -> np.ndarray:
    """Each clip's fold (0..k-1); -1: GTZAN's train side, trained on in every fold."""
    rng = random.Random(seed)
    fold = np.full(len(data), -1)
    main = np.where(data.partial, len(CLASSES), np.argmax(data.targets == 1, axis=1))
    groups: dict[str, list[int]] = {}
    for i in range(len(data)):
        if data.source[i] != "gtzan":
            groups.setdefault(data.group[i], []).append(i)
        elif data.ff_split[i] == "valid":
            groups[data.group[i]] = [i]
    names = sorted(groups)
    rng.shuffle(names)
    names.sort(key=lambda g: -len(groups[g]))
    load = np.zeros((k, len(CLASSES) + 1))
    sizes = np.zeros(k)
    for name in names:
        members = groups[name]
        counts = np.bincount(main[members], minlength=len(CLASSES) + 1)
        chosen = min(range(k), key=lambda f: (float(load[f] @ counts), sizes[f], rng.random()))
        fold[members] = chosen
        load[chosen] += counts
        sizes[chosen] += len(members)
    return fold
