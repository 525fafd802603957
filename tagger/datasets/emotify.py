"""The Emotify data set: clips of four genres with the nine GEMS listener fractions.

``labels.csv``: file, genre, and the nine GEMS fractions and/or the valence,
energy, danceability proxies. Emotion targets: the percentile rank of each
proxy (derived from the nine fractions when their columns are absent). Genre:
the ``genre`` column. Split by group: the clips a ``groups.csv`` beside the labels puts
together (``tagger/datasets/groups.py``); without one, the bundled estimate of
Emotify's albums and artists (``emotify_groups.py``) for each clip whose file
and listener count (``n_raters``) are Emotify's; every other clip is its own group.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tagger.datasets.emotify_groups import ESTIMATED_GROUPS, GROUPED_RATERS
from tagger.datasets.groups import GROUPS_CSV, clip_stem, read_group_table
from tagger.datasets.labels import LABELS_CSV, clips_or_fail, number, percentile_ranks, read_rows
from tagger.datasets.splits import Clip
from tagger.errors import DatasetError
from tagger.tasks import TARGETS

GEMS = ("amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power",
        "joyful_activation", "tension", "sadness")


def emotify_proxies(fractions: dict[str, float]) -> tuple[float, float, float]:
    """Valence, energy and danceability proxies from the nine GEMS listener fractions."""
    f = fractions
    valence = (f["joyful_activation"] + f["tenderness"] + f["amazement"]
               - f["sadness"] - f["tension"])
    energy = (f["power"] + f["joyful_activation"] + f["tension"] + f["amazement"]
              - f["calmness"] - f["tenderness"])
    return valence, energy, f["joyful_activation"]


def group_table(root: Path, rows: list[dict]) -> dict[str, str]:
    """Each grouped clip's group, by file stem: from ``groups.csv`` when present, else the
    bundled estimate for the clips whose file and ``n_raters`` are Emotify's."""
    if (root / GROUPS_CSV).is_file():
        return read_group_table(root / GROUPS_CSV)
    raters = {clip_stem(row["file"]): row.get("n_raters", "") for row in rows}
    return {stem: group for stem, group in ESTIMATED_GROUPS.items()
            if raters.get(stem, "").isdigit() and int(raters[stem]) == GROUPED_RATERS[stem]}


def read_clips(root: Path) -> list[Clip]:
    """Every listed clip that exists, with its emotion targets and genre ("" if none)."""
    labels = root / LABELS_CSV
    rows = read_rows(labels, ("file",))
    columns = set(rows[0]) if rows else set()
    if not set(TARGETS) <= columns and not set(GEMS) <= columns:
        raise DatasetError("lacks the valence, energy, danceability columns and the nine "
                           "emotion columns to derive them from", str(labels),
                           f"needs file and {', '.join(TARGETS)} or {', '.join(GEMS)}")
    raw = []
    for row in rows:
        if set(TARGETS) <= columns:
            raw.append(tuple(number(row, t, labels) for t in TARGETS))
        else:
            raw.append(emotify_proxies({g: number(row, g, labels) for g in GEMS}))
    ranked = np.stack([percentile_ranks(np.array(column)) for column in zip(*raw, strict=True)],
                      axis=1) if raw else np.zeros((0, len(TARGETS)))
    groups = group_table(root, rows)
    clips = []
    for row, values, targets in zip(rows, raw, ranked, strict=True):
        path = root / row["file"]
        group = groups.get(clip_stem(row["file"]))
        if path.is_file():
            clips.append(Clip(
                key=f"emotify:{row['file']}", source="emotify", path=path,
                group=f"emotify-group:{group}" if group else f"emotify-clip:{row['file']}",
                label=row.get("genre", "").lower(),
                targets=tuple(float(t) for t in targets),
                notes=dict(zip(TARGETS, values, strict=True)),
            ))
    return clips_or_fail(clips, len(rows), labels)
