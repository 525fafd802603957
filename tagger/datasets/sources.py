"""The ``sources`` layout: one genre vocabulary over several datasets, each with its own split.

``DIR`` holds dataset folders (``../shared/data`` is one):

| folder | genres | split |
|---|---|---|
| an audio layout (GTZAN) | its genre sub-folders | its ``clips.csv`` (fault-filtered) |
| Emotify (``labels.csv`` with ``genre``) | classical, electronic, pop, rock | by clip |
| 4Q (``labels.csv`` with ``quadrant``) | AllMusic genres that map cleanly | by artist |

Emotify and 4Q are split exactly as ``retrain --task emotion`` splits them
(the same ``valid_share`` and ``seed``), so an emotion model fine-tuned from
a genre model never had its held-out clips seen by the genre model either.
A 4Q clip is used when its AllMusic genres name exactly one of ours
(``ALLMUSIC_GENRES``) and nothing else but tags that say nothing of genre
(``ALLMUSIC_NEUTRAL``); "Pop/Rock", which could be either, is left out.
Every clip keeps its source, so evaluation can be per source.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tagger.datasets import TRAIN, VALID, Dataset, Split
from tagger.datasets.audio import (
    SPLIT_FILE,
    Clip,
    default_cache_dir,
    discover_clips,
    front_end_option,
    load_segment_sets,
)
from tagger.errors import DatasetError

ALLMUSIC_GENRES = {"Blues": "blues", "Classical": "classical", "Country": "country",
                   "Electronic": "electronic", "Jazz": "jazz", "Rap": "hiphop",
                   "Reggae": "reggae"}
ALLMUSIC_NEUTRAL = {"International", "Vocal"}
LABELS_CSV = "labels.csv"


def _header(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        return [c.strip() for c in next(csv.reader(stream), [])]


def source_kind(folder: Path) -> str | None:
    """``gtzan`` (an audio layout with ``clips.csv``), ``emotify``, ``4q`` or None."""
    columns = _header(folder / LABELS_CSV)
    if "quadrant" in columns and "allmusic_genres" in columns:
        return "4q"
    if "genre" in columns and "file" in columns:
        return "emotify"
    if (folder / SPLIT_FILE).is_file():
        return "gtzan"
    return None


def is_sources_layout(root: Path) -> bool:
    return root.is_dir() and any(source_kind(d) in ("4q", "emotify")
                                 for d in root.iterdir() if d.is_dir())


def allmusic_genre(tags: str) -> str | None:
    """Our genre for a 4Q clip's AllMusic tags, or None unless exactly one maps cleanly."""
    names = {t.strip() for t in tags.split(";") if t.strip()}
    ours = {ALLMUSIC_GENRES[n] for n in names if n in ALLMUSIC_GENRES}
    if len(ours) != 1 or names - set(ALLMUSIC_GENRES) - ALLMUSIC_NEUTRAL:
        return None
    return ours.pop()


def _emotion_split_clips(folder: Path, kind: str, valid_share: float, seed: int) -> list[Clip]:
    """The clips of an Emotify or 4Q folder with a genre, split as the emotion model's are."""
    from tagger.emotion.datasets import assign_splits, load_4q, load_emotify

    with open(folder / LABELS_CSV, newline="", encoding="utf-8") as stream:
        rows = {row["file"].strip(): row for row in csv.DictReader(stream)}
    loaded = load_4q(folder) if kind == "4q" else load_emotify(folder)
    clips = []
    for clip in assign_splits(loaded, valid_share, seed):
        row = rows[clip.key.split(":", 1)[1]]
        genre = (allmusic_genre(row["allmusic_genres"]) if kind == "4q"
                 else row["genre"].strip().lower() or None)
        if genre:
            clips.append(Clip(clip.path, genre, clip.split, clip.group))
    return clips


def discover_sources(
    root: Path, valid_share: float, seed: int, genres: list[str] | None = None
) -> tuple[dict[str, list[Clip]], list[str]]:
    """Every usable clip of every dataset folder under ``root``, by source, and the classes
    (``genres`` when given: clips of other genres are left out)."""
    by_source: dict[str, list[Clip]] = {}
    for folder in sorted(d for d in root.iterdir() if d.is_dir()):
        kind = source_kind(folder)
        if kind == "gtzan":
            clips, _ = discover_clips(folder, valid_share, seed)
        elif kind in ("4q", "emotify"):
            clips = _emotion_split_clips(folder, kind, valid_share, seed)
        else:
            continue
        if genres:
            clips = [c for c in clips if c.label in genres]
        if clips:
            by_source[folder.name] = clips
    classes = sorted(genres or {c.label for clips in by_source.values() for c in clips})
    if len(classes) < 2 or not by_source:
        raise DatasetError("holds no dataset folders with at least two genres", str(root),
                           "expected folders such as gtzan/ (with clips.csv), emotify/, 4q/")
    return by_source, classes


def join_splits(parts: list[tuple[str, Split]]) -> Split:
    """One split from per-source splits; clip ids are renumbered and sources kept."""
    features, labels, clip_ids, names, sources, groups = [], [], [], [], [], []
    for source, split in parts:
        features.append(split.features)
        labels.append(split.labels)
        clip_ids.append(split.clip_ids + len(names))
        names += split.clip_names
        sources += [source] * len(split.clip_names)
        groups += split.clip_groups or split.clip_names
    return Split(np.concatenate(features), np.concatenate(labels), np.concatenate(clip_ids),
                 names, sources, groups)


def load(root: Path, options: dict[str, Any],
         on_clip: Callable[[str, str | None], None] | None = None) -> Dataset:
    """Options: ``valid_share``, ``seed``, ``cache_dir``, ``genres`` (a vocabulary to keep),
    ``front_end`` and ``context`` (neighbouring seconds each example also sees)."""
    spec = front_end_option(options)
    valid_share, seed = options.get("valid_share", 0.2), options.get("seed", 0)
    by_source, classes = discover_sources(root, valid_share, seed, options.get("genres"))
    cache_dir = options.get("cache_dir") or default_cache_dir()
    per_split: dict[str, list[tuple[str, Split]]] = {TRAIN: [], VALID: []}
    clip_counts: dict[str, dict[str, int]] = {}
    for source, clips in by_source.items():
        for split_name, split in load_segment_sets(clips, classes, spec, cache_dir,
                                                   on_clip).items():
            per_split[split_name].append((source, split))
            clip_counts.setdefault(source, {})[split_name] = len(split.clip_names)
    splits = {name: join_splits(parts) for name, parts in per_split.items() if parts}
    notes = {"split": f"GTZAN by clips.csv; Emotify by clip and 4Q by artist, seeded "
                      f"(seed {seed}, valid share {valid_share}), as the emotion model's",
             "sources": clip_counts, "allmusic_genres": ALLMUSIC_GENRES}
    return Dataset("sources", classes, splits, spec, notes)
