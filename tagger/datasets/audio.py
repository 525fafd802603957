"""The ``audio`` layout: a folder of genre sub-folders of audio (GTZAN's), turned into
melgrams (see ``melgrams.py``)."""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tagger.audio import AUDIO_EXTENSIONS
from tagger.datasets.melgrams import default_cache_dir, front_end_option, load_clips
from tagger.datasets.splits import TRAIN, VALID, Clip, Dataset
from tagger.errors import DatasetError

SPLIT_FILE = "clips.csv"


def discover_clips(root: Path, valid_share: float, seed: int,
                   on_clip: Callable[[str, str | None], None] | None = None
                   ) -> tuple[list[Clip], list[str]]:
    """Find ``root/GENRE/*.audio`` clips and assign each to train or valid.

    A ``clips.csv`` (columns ``file, genre, ff_split``) in ``root`` fixes the
    split, e.g. GTZAN's fault-filtered lists (rows marked ``excluded`` are
    left out, and so are rows of files that are absent). Rows of genres with no
    folder of audio are left out and reported to ``on_clip``. Without it, a
    seeded split stratified by genre holds out ``valid_share`` of the clips of
    each genre, so no clip has seconds on both sides.
    """
    if not root.is_dir():
        raise DatasetError("training data folder not found", str(root), "pass --data DIR")
    genres = sorted(
        d.name for d in root.iterdir()
        if d.is_dir() and any(f.suffix.lower() in AUDIO_EXTENSIONS for f in d.iterdir())
    )
    if len(genres) < 2:
        raise DatasetError(
            "needs at least two genre sub-folders holding audio files",
            str(root),
            "lay it out as DIR/GENRE/clip.mp3",
        )
    split_file = root / SPLIT_FILE
    if split_file.is_file():
        clips = _clips_from_split_file(root, split_file, genres, on_clip)
        if not any(c.split == VALID for c in clips):
            raise DatasetError("the split leaves no validation clips", str(split_file),
                               f"mark some clips {VALID} in its ff_split column")
    else:
        clips = _seeded_split(root, genres, valid_share, seed)
        if not any(c.split == VALID for c in clips):
            raise DatasetError("the split leaves no validation clips", str(root),
                               "give some genre two clips or more: one of each such genre is "
                               "held out")
    return clips, genres


def _clips_from_split_file(root: Path, split_file: Path, genres: list[str],
                           on_clip: Callable[[str, str | None], None] | None) -> list[Clip]:
    clips, absent, other_splits = [], [], 0
    unknown: dict[str, int] = {}
    with open(split_file, newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            try:
                name, genre, split = row["file"], row["genre"], row["ff_split"]
            except KeyError as error:
                raise DatasetError(
                    f"needs the columns file, genre, ff_split (missing {error})", str(split_file)
                ) from None
            if split not in (TRAIN, VALID):
                other_splits += 1
            elif not (root / name).is_file():
                absent.append(name)
            elif genre not in genres:
                unknown[genre] = unknown.get(genre, 0) + 1
            else:
                clips.append(Clip(root / name, split, label=genre))
    unknown_text = ", ".join(f"{genre} ({count})" for genre, count in sorted(unknown.items()))
    if not clips:
        reasons = ([f"{len(absent)} rows name files that do not exist (e.g. {absent[0]})"]
                   if absent else [])
        if unknown:
            reasons.append(f"rows of genres with no folder of audio: {unknown_text}")
        if other_splits:
            reasons.append(f"{other_splits} rows are in neither the {TRAIN} nor the {VALID} split")
        raise DatasetError("lists no usable clip: " + ("; ".join(reasons) or "it has no rows"),
                           str(split_file),
                           f"file is relative to {root}, genre names one of its folders "
                           f"({', '.join(genres)}), ff_split is {TRAIN} or {VALID}")
    if unknown and on_clip:
        on_clip(str(split_file), f"{split_file}: left out the rows of genres with no folder "
                                 f"of audio: {unknown_text}")
    return clips


def _seeded_split(root: Path, genres: list[str], valid_share: float, seed: int) -> list[Clip]:
    rng = random.Random(seed)
    clips = []
    for genre in genres:
        files = sorted(
            f for f in (root / genre).iterdir() if f.suffix.lower() in AUDIO_EXTENSIONS
        )
        rng.shuffle(files)
        n_valid = max(1, round(valid_share * len(files))) if len(files) > 1 else 0
        clips += [Clip(f, VALID if i < n_valid else TRAIN, label=genre)
                  for i, f in enumerate(files)]
    return sorted(clips, key=lambda c: str(c.path))


def load(root: Path, options: dict[str, Any],
         on_clip: Callable[[str, str | None], None] | None = None) -> Dataset:
    """Options: ``valid_share``, ``seed``, ``cache_dir`` (None: the user cache folder),
    ``front_end`` and ``context`` (neighbouring seconds each example also sees)."""
    spec = front_end_option(options)
    clips, classes = discover_clips(root, options.get("valid_share", 0.2), options.get("seed", 0),
                                    on_clip)
    splits = load_clips(clips, spec, options.get("cache_dir") or default_cache_dir(), classes,
                        on_clip)
    split_rule = ("clips.csv" if (root / SPLIT_FILE).is_file()
                  else f"seeded by clip, valid share {options.get('valid_share', 0.2)}")
    return Dataset("audio", classes, splits, spec, {"split": split_rule})
