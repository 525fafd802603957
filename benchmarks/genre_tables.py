"""The benchmark's tables from cross-validated results: rows of columns, each figure a list
of per-seed values (``bench_genres.print_table`` shows them as mean (min..max))."""

from __future__ import annotations

import numpy as np
from genre_cv import CVResult

from tagger.datasets.vocabulary import CLASSES, POP_ROCK, TODAY_CLASSES
from tagger.training.genre_folds import POP_ROCK_COLUMNS

SOURCES = ("gtzan", "emotify", "4q")


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def source_table(results: list[CVResult]) -> list[dict]:
    """Per recipe and source: top-1 over all the clip's genres, top-1 on today's labelled
    clips, abstentions, genres per song, and how often a song's genres hold a true one."""
    rows = []
    for r in results:
        d = r.data
        for source in (*SOURCES, "all"):
            mask = d.usable & (True if source == "all" else d.source == source)
            cells: dict[str, list[float]] = {k: [] for k in ("top", "first", "today", "abst",
                                                              "n", "hit")}
            for s in range(r.seeds):
                m = mask & r.scored(s)
                pred = r.predicted(s)
                abstains = ~pred.any(1)
                hit = (pred & (d.targets == 1)).any(1) | (d.partial
                                                          & pred[:, POP_ROCK_COLUMNS].any(1))
                cells["top"].append(_mean(r.top_right(s)[m]))
                cells["first"].append(_mean(r.first_right(s)[m]))
                cells["today"].append(_mean(r.today_right(s)[m & (d.today >= 0)]))
                cells["abst"].append(_mean(abstains[m]))
                cells["n"].append(_mean(pred[m & ~abstains].sum(1)))
                cells["hit"].append(_mean(hit[m & ~abstains]))
            rows.append({"recipe": r.name, "source": source,
                         "clips": int((mask & r.scored(0)).sum()),
                         "top-1 (all its genres)": cells["top"],
                         "first genre right (none: wrong)": cells["first"],
                         "top-1 on today's clips": cells["today"], "abstains": cells["abst"],
                         "genres per song": cells["n"],
                         "a given genre is right": cells["hit"]})
    return rows


def versus(today: CVResult, new: CVResult, restricted: bool) -> list[dict]:
    """Clip for clip on today's labelled clips: clips whose top genre is today's label."""
    d = today.data
    pop = TODAY_CLASSES.index("pop")
    rows = []
    for source in (*SOURCES, "all"):
        mask = (d.today >= 0) & d.usable & (True if source == "all" else d.source == source)
        cells: dict[str, list[float]] = {k: [] for k in ("a", "b", "oa", "ob", "d", "pa", "pb")}
        for s in range(min(today.seeds, new.seeds)):
            m = mask & today.scored(s) & new.scored(s)
            a, b = today.today_right(s), new.today_right(s, restricted)
            cells["a"].append(int(a[m].sum()))
            cells["b"].append(int(b[m].sum()))
            cells["oa"].append(int((a & ~b)[m].sum()))
            cells["ob"].append(int((~a & b)[m].sum()))
            cells["d"].append(int(b[m].sum() - a[m].sum()))
            cells["pa"].append(int(a[m & (d.today == pop)].sum()))
            cells["pb"].append(int(b[m & (d.today == pop)].sum()))
        rows.append({"source": source, "clips": int((mask & today.scored(0)).sum()),
                     "today right": cells["a"], "new right": cells["b"],
                     "only today": cells["oa"], "only new": cells["ob"],
                     "new - today (clips)": cells["d"], "pop: today": cells["pa"],
                     "pop: new": cells["pb"]})
    return rows


def class_table(new: CVResult, today: CVResult) -> list[dict]:
    """Per genre: top-1 recall (and today's on the same clips), recall among the song's
    genres, precision (closed-world truths), abstentions, held-out songs still given a
    genre, the mean threshold."""
    d = new.data
    rows = []
    for g, genre in enumerate(CLASSES):
        positive = d.usable & (d.targets[:, g] == 1)
        cells: dict[str, list[float]] = {k: [] for k in ("t0", "t1", "rec", "prec", "ab",
                                                          "held", "th")}
        for s in range(new.seeds):
            p = positive & new.scored(s)
            pred = new.predicted(s)
            cells["t1"].append(_mean(new.top_genre(s)[p] == g))
            cells["t0"].append(_mean(today.top_genre(s)[p & today.scored(s)] == g))
            cells["rec"].append(_mean(pred[p, g]))
            chosen = new.scored(s) & d.usable & (d.closed[:, g] >= 0) & pred[:, g]
            cells["prec"].append(_mean(d.closed[chosen, g] == 1))
            cells["ab"].append(_mean(~pred[p].any(1)))
            given, scored = new.held_given(s, g)
            cells["held"].append(given / scored if scored else float("nan"))
            cells["th"].append(float(np.nanmean(new.thresholds[s][:, g])))
        partial = int((d.usable & d.partial & new.scored(0)).sum()) if genre in POP_ROCK else 0
        rows.append({"genre": genre, "clips": int((positive & new.scored(0)).sum()),
                     "+ Pop/Rock": partial, "today top-1": cells["t0"],
                     "top-1 recall": cells["t1"], "recall (among the song's genres)":
                     cells["rec"], "precision": cells["prec"], "abstains": cells["ab"],
                     "held out: still given a genre": cells["held"],
                     "threshold": cells["th"]})
    return rows


def holdout_summary(results: list[CVResult]) -> list[dict]:
    """Pooled over held-out genres: their songs (of no other genre) still given a genre;
    in-vocabulary songs that abstain; AllMusic-outside clips given a genre."""
    rows = []
    for r in results:
        held, inside, outside = [], [], []
        for s in range(r.seeds):
            counts = np.array([r.held_given(s, h) for h in range(len(r.classes))])
            held.append(counts[:, 0].sum() / counts[:, 1].sum())
            given = r.predicted(s).any(1)
            inside.append(_mean(~given[r.data.usable & r.scored(s)]))
            outside.append(_mean(given[r.data.outside & r.scored(s)]))
        rows.append({"recipe": r.name, "genres held out": len(r.classes),
                     "in-vocabulary songs that abstain": inside,
                     "held-out genre's songs still given a genre": held,
                     "AllMusic-outside clips given a genre": outside})
    return rows
