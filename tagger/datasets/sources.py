"""The ``sources`` layout: a folder of data set folders (``../shared/data`` is one), each
with its own split, for either task.

| folder | genres | emotion targets | split |
|---|---|---|---|
| an audio layout (GTZAN) | its genre sub-folders | - | its ``clips.csv`` (fault-filtered) |
| Emotify (``labels.csv``) | classical, electronic, pop, rock | from GEMS | by album group |
| 4Q (``labels.csv``, ``quadrant``) | AllMusic genres that map cleanly | quadrants | by artist |
| NTUA multitask (``train_labels.txt``) | - | as given | by clip |

Emotify and 4Q are split the same way (the same ``valid_share`` and ``seed``)
for both tasks, whole groups at a time (a 4Q artist; an Emotify album or artist
as estimated, see ``emotify.py``), so an emotion model fine-tuned from a genre
model never had its held-out clips seen by the genre model either. Every clip keeps its
source, so evaluation can be per source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tagger.datasets import emotify, fourq, ntua
from tagger.datasets.audio import SPLIT_FILE, discover_clips
from tagger.datasets.labels import LABELS_CSV, csv_columns
from tagger.datasets.melgrams import default_cache_dir, front_end_option, load_clips
from tagger.datasets.splits import TRAIN, VALID, Clip, Dataset, Split, assign_splits, join_splits
from tagger.errors import DatasetError
from tagger.tasks import TARGETS

EMOTION_SOURCES: dict[str, Callable[[Path], list[Clip]]] = {
    "4q": fourq.read_clips, "emotify": emotify.read_clips, "ntua": ntua.read_emotion_clips}
GENRE_SOURCES = ("gtzan", "4q", "emotify")
SPLIT_UNITS = {"4q": "4Q by artist", "emotify": "Emotify by estimated album group",
               "ntua": "NTUA by clip"}


def source_kind(folder: Path) -> str | None:
    """``4q``, ``emotify``, ``ntua`` (multitask or genre label files), ``gtzan`` (an audio
    layout with ``clips.csv``) or None."""
    columns = csv_columns(folder / LABELS_CSV)
    if "quadrant" in columns:
        return "4q"
    if columns:
        return "emotify"
    if (folder / ntua.LABELS_TXT).is_file():
        return "ntua"
    if (folder / SPLIT_FILE).is_file():
        return "gtzan"
    return None


def source_folders(root: Path, kinds: tuple[str, ...] | dict[str, Any]) -> list[Path]:
    """``root`` when it is a data set of one of ``kinds``, else its sub-folders that are."""
    if source_kind(root) in kinds:
        return [root]
    return sorted(d for d in root.iterdir() if d.is_dir() and source_kind(d) in kinds)


def discover_emotion_clips(root: Path, valid_share: float,
                           seed: int) -> tuple[list[Clip], list[str]]:
    """Every clip with emotion targets under ``root`` with its split, and the layouts found.

    ``root`` is one layout folder, or a folder whose sub-folders are layouts
    (e.g. ../shared/data: its 4q/ and emotify/ are used, gtzan/ is ignored).
    """
    if not root.is_dir():
        raise DatasetError("training data folder not found", str(root), "pass --data DIR")
    folders = source_folders(root, EMOTION_SOURCES)
    if not folders:
        raise DatasetError(
            "holds no emotion data layout", str(root),
            "expected 4Q or Emotify (labels.csv beside the audio) or NTUA multitask "
            "(train_labels.txt: Id,valence,energy,danceability), or folders of them")
    clips: list[Clip] = []
    layouts = []
    for folder in folders:
        kind = source_kind(folder)
        assert kind is not None
        layouts.append(kind)
        clips += assign_splits(EMOTION_SOURCES[kind](folder), valid_share, seed)
    return clips, layouts


def discover_sources(
    root: Path, valid_share: float, seed: int, genres: list[str] | None = None
) -> tuple[dict[str, list[Clip]], list[str]]:
    """Every clip with a genre of every data set folder under ``root``, by source, and the
    classes (``genres`` when given: clips of other genres are left out). 4Q and Emotify
    clips are split as for emotion, over all their clips."""
    by_source: dict[str, list[Clip]] = {}
    for folder in source_folders(root, GENRE_SOURCES):
        if source_kind(folder) == "gtzan":
            clips, _ = discover_clips(folder, valid_share, seed)
        else:
            read = EMOTION_SOURCES[source_kind(folder) or ""]
            clips = [c for c in assign_splits(read(folder), valid_share, seed) if c.label]
        if genres:
            clips = [c for c in clips if c.label in genres]
        if clips:
            by_source[folder.name] = clips
    classes = sorted(genres or {c.label for clips in by_source.values() for c in clips})
    if len(classes) < 2 or not by_source:
        raise DatasetError("holds no dataset folders with at least two genres", str(root),
                           "expected folders such as gtzan/ (with clips.csv), emotify/, 4q/")
    return by_source, classes


def load(root: Path, options: dict[str, Any],
         on_clip: Callable[[str, str | None], None] | None = None) -> Dataset:
    """Genres. Options: ``valid_share``, ``seed``, ``cache_dir``, ``genres`` (a vocabulary to
    keep), ``front_end`` and ``context`` (neighbouring seconds each example also sees)."""
    spec = front_end_option(options)
    valid_share, seed = options.get("valid_share", 0.2), options.get("seed", 0)
    by_source, classes = discover_sources(root, valid_share, seed, options.get("genres"))
    cache_dir = options.get("cache_dir") or default_cache_dir()
    per_split: dict[str, list[Split]] = {TRAIN: [], VALID: []}
    clip_counts: dict[str, dict[str, int]] = {}
    for source, clips in by_source.items():
        for split_name, split in load_clips(clips, spec, cache_dir, classes, on_clip).items():
            per_split[split_name].append(
                replace(split, clip_sources=[source] * len(split.clip_names)))
            clip_counts.setdefault(source, {})[split_name] = len(split.clip_names)
    splits = {name: join_splits(parts) for name, parts in per_split.items() if parts}
    notes = {"split": f"GTZAN by clips.csv; Emotify by estimated album group and 4Q by "
                      f"artist, seeded (seed {seed}, valid share {valid_share}), as the "
                      f"emotion model's",
             "sources": clip_counts, "allmusic_genres": fourq.ALLMUSIC_GENRES}
    return Dataset("sources", classes, splits, spec, notes)


def load_emotion(root: Path, options: dict[str, Any],
                 on_clip: Callable[[str, str | None], None] | None = None) -> Dataset:
    """Emotion targets of every emotion data set at or under ``root``. Options as ``load``."""
    spec = front_end_option(options)
    valid_share, seed = options.get("valid_share", 0.2), options.get("seed", 0)
    clips, layouts = discover_emotion_clips(root, valid_share, seed)
    splits = load_clips(clips, spec, options.get("cache_dir") or default_cache_dir(), None,
                        on_clip)
    notes = {"layouts": layouts,
             "split": f"seeded (seed {seed}), valid share {valid_share}: "
                      + ", ".join(SPLIT_UNITS[layout] for layout in layouts)}
    return Dataset("+".join(layouts), list(TARGETS), splits, spec, notes)
