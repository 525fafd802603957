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
    clip_familiarity,
    clip_probabilities,
    f1_thresholds,
    head_logits,
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
    # (seeds, clips) and (seeds, held-out genres, clips): the song is familiar enough to get
    # genres (softset with an unfamiliar share); None: no such test
    familiar: np.ndarray | None = None
    held_familiar: np.ndarray | None = None

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

    def genres(self, probs: np.ndarray, thresholds: np.ndarray | None,
               familiar: np.ndarray | None = None) -> np.ndarray:
        """(clips, CLASSES) bool: the songs' genres under this recipe's decision."""
        out = np.zeros((len(probs), len(CLASSES)), dtype=bool)
        if familiar is not None:
            probs = np.where(familiar[:, None], probs, np.nan)
        p = np.nan_to_num(probs, nan=-1)
        if thresholds is None:
            top = [CLASSES.index(self.classes[t]) for t in p.argmax(1)]
            out[np.arange(len(p)), top] = p.max(1) >= UNCERTAIN_BELOW
        else:
            out[:, [CLASSES.index(g) for g in self.classes]] = p >= thresholds
        return out

    def predicted(self, s: int) -> np.ndarray:
        return self.genres(self.probs[s], None if self.softmax else self.thresholds[s],
                           None if self.familiar is None else self.familiar[s])

    def top_right(self, s: int) -> np.ndarray:
        """The top genre is one of the clip's genres (Pop/Rock: pop, rock or metal)."""
        top = self.top_genre(s)
        right = self.data.targets[np.arange(len(top)), top] == 1
        return right | (self.data.partial & np.isin(top, POP_ROCK_COLUMNS))

    def first_right(self, s: int) -> np.ndarray:
        """The song's best genre (its top among those it is given) is one of the clip's; a
        song given none is not right."""
        given = self.predicted(s)
        p = np.full(given.shape, -1.0)
        columns = [CLASSES.index(g) for g in self.classes]
        p[:, columns] = np.nan_to_num(self.probs[s], nan=-1)
        first = np.where(given, p, -1.0).argmax(1)
        right = self.data.targets[np.arange(len(first)), first] == 1
        right |= self.data.partial & np.isin(first, POP_ROCK_COLUMNS)
        return right & given.any(1)

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
        scored = (~np.isnan(p[:, 0]) & ((d.targets == 1).sum(1) == 1) & ~d.partial
                  & (d.targets[:, CLASSES.index(self.classes[h])] == 1))
        if not scored.any():
            return 0, 0
        thresholds = None
        if not self.softmax:
            thresholds = self.thresholds[s][scored].copy()
            thresholds[:, CLASSES.index(self.classes[h])] = np.inf
        familiar = None if self.held_familiar is None else self.held_familiar[s, h][scored]
        return (int(self.genres(p[scored], thresholds, familiar).any(1).sum()),
                int(scored.sum()))


def cross_validate(data: GenreData, name: str, config: HeadConfig, seeds: list[int],
                   k: int, unfamiliar_share: float = 0.0,
                   min_precision: float = 0.0) -> CVResult:
    """``config``'s heads over ``k`` group-aware folds, with every genre held out in turn.

    With ``unfamiliar_share`` (softset), a song whose familiarity (the log-sum-exp of its
    mean logits) is under its fold's level gets no genre: the level leaves that share of
    the inner folds' known songs out, as ``retrain --format vocabulary`` sets it; a
    held-out genre's heads take it from their fold's scored songs of the other genres.
    ``min_precision``: the thresholds' (``f1_thresholds``)."""
    softmax = config.loss == "softmax"
    classes = TODAY_CLASSES if softmax else CLASSES
    n = len(data)
    probs = np.full((len(seeds), n, len(classes)), np.nan)
    held = np.full((len(seeds), len(classes), n, len(classes)), np.nan)
    thresholds = None if softmax else np.full((len(seeds), n, len(classes)), np.nan)
    testing_familiarity = unfamiliar_share > 0 and not softmax
    familiar = np.ones((len(seeds), n), dtype=bool) if testing_familiarity else None
    held_familiar = (np.ones((len(seeds), len(classes), n), dtype=bool)
                     if testing_familiarity else None)
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
                    jobs.append((h, f, test & data.usable if testing_familiarity else test_h))
        heads = train_stack(data.x, data.row_clip, targets, data.partial, POP_ROCK_COLUMNS,
                            specs, config, seed)
        inner = {f: np.full((n, len(classes)), np.nan) for f in range(k)}
        inner_familiarity = {f: np.full(n, np.nan) for f in range(k)}
        outer_familiarity = np.full(n, np.nan)
        for i, (what, f, mask) in enumerate(jobs):
            rows, local = data.rows(mask)
            logits = head_logits(heads, i, data.x[rows])
            p = clip_probabilities(logits / (TEMPERATURE if softmax else 1.0), local,
                                   int(mask.sum()))
            known = clip_familiarity(logits, local, int(mask.sum()))
            if what == "outer":
                probs[s, mask] = p
                outer_familiarity[mask] = known
            elif what == "inner":
                inner[f][mask] = p
                inner_familiarity[f][mask] = known
            else:
                held[s, what, mask] = p
                if held_familiar is not None:
                    others = data.targets[mask, CLASSES.index(classes[what])] != 1
                    level = np.quantile(known[others], unfamiliar_share)
                    held_familiar[s, what, mask] = known >= level
        for f in range(k) if thresholds is not None else ():
            scored = ~np.isnan(inner[f][:, 0])
            thresholds[s, fold == f] = f1_thresholds(inner[f][scored], targets[scored],
                                                     min_precision)
            if familiar is not None:
                level = np.quantile(inner_familiarity[f][scored], unfamiliar_share)
                familiar[s, fold == f] = outer_familiarity[fold == f] >= level
        print(f"{name} seed {seed}: {len(specs)} heads, {time.perf_counter() - started:.0f} s",
              flush=True)
    return CVResult(name, data, classes, probs, thresholds, held,
                    round(time.perf_counter() - started, 1), familiar, held_familiar)
