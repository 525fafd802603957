"""Groups of clips that must stay on one side of a split: one artist's or one album's.

A model validated on clips whose album or artist it was trained on is scored
partly on recognising the recording, not the genre. Where a data set names
its artists (4Q), the artist is the group. Where it does not (Emotify's
Magnatune excerpts), groups are estimated (``tools/estimate_groups.py``): each
clip's mean embedding through the bundled genre model's frozen backbones,
less the mean of its genre's clips (what every clip of a genre shares says
nothing of its album), and two clips are linked when these have a cosine
similarity of at least a threshold; every connected component of these links
is one group. A ``groups.csv`` beside a
data set's labels (columns ``file, group``) names the groups instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import numpy as np

from tagger.datasets.labels import read_rows

GROUPS_CSV = "groups.csv"


def similarity_links(vectors: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Every pair ``(i, j, similarity)``, ``i < j``, whose rows of ``vectors`` have a cosine
    similarity of at least ``threshold``, most similar first."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    rows, columns = np.nonzero(np.triu(similarity >= threshold, k=1))
    pairs = [(int(i), int(j), float(similarity[i, j])) for i, j in zip(rows, columns,
                                                                       strict=True)]
    return sorted(pairs, key=lambda pair: -pair[2])


def connected_components(n: int, links: Iterable[tuple[int, int, float]]) -> list[int]:
    """The component of each of ``n`` items joined by ``links``: the smallest item in it."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in links:
        a, b = root(i), root(j)
        parent[max(a, b)] = min(a, b)
    return [root(i) for i in range(n)]


def centred_by_label(vectors: np.ndarray, labels: list[str]) -> np.ndarray:
    """``vectors`` less the mean of the rows with the same label."""
    names = np.array(labels)
    centred = vectors.astype(np.float64)
    for label in set(labels):
        rows = names == label
        centred[rows] -= centred[rows].mean(axis=0)
    return centred


def similarity_groups(vectors: np.ndarray, threshold: float) -> list[int]:
    """Each row's group: the connected components of links of similarity >= ``threshold``."""
    return connected_components(len(vectors), similarity_links(vectors, threshold))


def clip_stem(file: str) -> str:
    """A clip's file without its suffix (``pop/12.opus`` -> ``pop/12``), so a group table
    holds for any encoding of the same data set."""
    path = PurePosixPath(file.replace("\\", "/"))
    return str(path.with_suffix(""))


def read_group_table(path: Path) -> dict[str, str]:
    """``groups.csv``: each listed clip's group, by ``clip_stem``."""
    return {clip_stem(row["file"]): row["group"] for row in read_rows(path, ("file", "group"))
            if row["group"]}
