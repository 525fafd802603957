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

import random
import time
from dataclasses import dataclass

import numpy as np
from genre_heads import HeadConfig, HeadSpec, f1_thresholds, song_probabilities, train_stack

from tagger.datasets.vocabulary import CLASSES, POP_ROCK, TODAY_CLASSES, GenreClip

TEMPERATURE, UNCERTAIN_BELOW = 0.7814, 0.35  # the bundled genre-musicnn11's card and tagging
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
