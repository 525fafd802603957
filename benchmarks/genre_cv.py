"""Group-aware cross-validation of genre heads on cached per-second embeddings.

Folds: whole 4Q artists and Emotify estimated album groups go to one fold, largest first, to
the fold with fewest clips of their genres. GTZAN follows its fault-filtered split: its
train clips are trained on in every fold, its valid clips dealt to the folds for scoring and
never trained on (the split keeps artists apart between its sides, not within them). A seed
deals the folds and seeds the heads. AllMusic-outside clips are scored, never trained on.

Song decision: mean per-second probability per genre. softmax (today's): temperature, the
top genre unless under ``UNCERTAIN_BELOW``. softset: the genres whose mean probability
reaches the genre's threshold (F1-optimal on an inner cross-validation of the training
folds), best first; none: the song abstains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from tagger.datasets.vocabulary import CLASSES, TODAY_CLASSES
from tagger.training.genre_folds import POP_ROCK_COLUMNS, GenreData, group_folds
from tagger.training.softset import (
    HeadConfig,
    HeadSpec,
    f1_thresholds,
    song_probabilities,
    train_stack,
)

TEMPERATURE, UNCERTAIN_BELOW = 0.7814, 0.35  # the bundled genre-musicnn11's card and tagging


@dataclass
class CVResult:
    """One recipe's out-of-fold song probabilities and its song decisions."""

    name: str
    data: GenreData
    classes: tuple[str, ...]
    probs: np.ndarray  # (seeds, clips, classes), NaN: not scored
    thresholds: np.ndarray | None  # (seeds, clips, classes): of each clip's fold (softset)
    held: np.ndarray  # (seeds, held-out genres, clips, classes): that genre's heads
    seconds: float

    @property
    def seeds(self) -> int:
        return len(self.probs)

    @property
    def softmax(self) -> bool:
        return self.thresholds is None

    def scored(self, s: int) -> np.ndarray:
        return ~np.isnan(self.probs[s, :, 0])

    def top_genre(self, s: int, among: tuple[str, ...] | None = None) -> np.ndarray:
        """Index in CLASSES of each clip's top genre (``among``: of those genres only)."""
        columns = [self.classes.index(g) for g in among or self.classes]
        top = np.nan_to_num(self.probs[s][:, columns], nan=-1).argmax(1)
        return np.array([CLASSES.index(self.classes[columns[t]]) for t in top])

    def genres(self, probs: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
        """(clips, CLASSES) bool: the songs' genres under this recipe's decision."""
        out = np.zeros((len(probs), len(CLASSES)), dtype=bool)
        p = np.nan_to_num(probs, nan=-1)
        if thresholds is None:
            top = [CLASSES.index(self.classes[t]) for t in p.argmax(1)]
            out[np.arange(len(p)), top] = p.max(1) >= UNCERTAIN_BELOW
        else:
            out[:, [CLASSES.index(g) for g in self.classes]] = p >= thresholds
        return out

    def predicted(self, s: int) -> np.ndarray:
        return self.genres(self.probs[s], None if self.softmax else self.thresholds[s])

    def top_right(self, s: int) -> np.ndarray:
        """The top genre is one of the clip's genres (Pop/Rock: pop, rock or metal)."""
        top = self.top_genre(s)
        right = self.data.targets[np.arange(len(top)), top] == 1
        return right | (self.data.partial & np.isin(top, POP_ROCK_COLUMNS))

    def today_right(self, s: int, restricted: bool = False) -> np.ndarray:
        """The top genre is today's label (``restricted``: the top among today's 11)."""
        top = self.top_genre(s, TODAY_CLASSES if restricted else None)
        today = np.array([CLASSES.index(TODAY_CLASSES[t]) if t >= 0 else -2
                          for t in self.data.today])
        return top == today

    def held_given(self, s: int, h: int) -> tuple[int, int]:
        """Of the scored clips of held-out genre ``h`` with no other genre (nor Pop/Rock), how
        many still get a genre from the heads trained without it."""
        p = self.held[s, h]
        d = self.data
        scored = ~np.isnan(p[:, 0]) & ((d.targets == 1).sum(1) == 1) & ~d.partial
        if not scored.any():
            return 0, 0
        thresholds = None
        if not self.softmax:
            thresholds = self.thresholds[s][scored].copy()
            thresholds[:, CLASSES.index(self.classes[h])] = np.inf
        return int(self.genres(p[scored], thresholds).any(1).sum()), int(scored.sum())


def cross_validate(data: GenreData, name: str, config: HeadConfig, seeds: list[int],
                   k: int) -> CVResult:
    """``config``'s heads over ``k`` group-aware folds, with every genre held out in turn."""
    softmax = config.loss == "softmax"
    classes = TODAY_CLASSES if softmax else CLASSES
    n = len(data)
    probs = np.full((len(seeds), n, len(classes)), np.nan)
    held = np.full((len(seeds), len(classes), n, len(classes)), np.nan)
    thresholds = None if softmax else np.full((len(seeds), n, len(classes)), np.nan)
    targets = data.today if softmax else data.closed
    started = time.perf_counter()
    for s, seed in enumerate(seeds):
        fold = group_folds(data, k, seed)
        trainable = data.usable & (data.ff_split != "valid")
        specs, jobs = [], []
        for f in range(k):
            train = trainable & (fold != f)
            test = (data.usable | data.outside) & (fold == f)
            specs.append(HeadSpec(train))
            jobs.append(("outer", f, test))
            if not softmax:
                for j in set(range(k)) - {f}:
                    specs.append(HeadSpec(train & (fold != j)))
                    jobs.append(("inner", f, data.usable & (fold == j)))
            for h, genre in enumerate(classes):
                test_h = test & data.usable & (data.targets[:, CLASSES.index(genre)] == 1)
                if test_h.any():
                    specs.append(HeadSpec(train, h))
                    jobs.append((h, f, test_h))
        heads = train_stack(data.x, data.row_clip, targets, data.partial, POP_ROCK_COLUMNS,
                            specs, config, seed)
        inner = {f: np.full((n, len(classes)), np.nan) for f in range(k)}
        for i, (what, f, mask) in enumerate(jobs):
            rows, local = data.rows(mask)
            p = song_probabilities(heads, i, data.x[rows], local, int(mask.sum()),
                                   TEMPERATURE if softmax else 1.0)
            if what == "outer":
                probs[s, mask] = p
            elif what == "inner":
                inner[f][mask] = p
            else:
                held[s, what, mask] = p
        if thresholds is not None:
            for f in range(k):
                known = ~np.isnan(inner[f][:, 0])
                thresholds[s, fold == f] = f1_thresholds(inner[f][known], targets[known])
        print(f"{name} seed {seed}: {len(specs)} heads, {time.perf_counter() - started:.0f} s",
              flush=True)
    return CVResult(name, data, classes, probs, thresholds, held,
                    round(time.perf_counter() - started, 1))
