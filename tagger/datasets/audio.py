"""The ``audio`` layout: a folder of genre sub-folders of audio, turned into melgrams.

Every clip goes through the tagger's own decoder, segmenter and front end, so
training sees exactly the features that tagging computes. Melgrams are cached
per clip on disk (keyed by the file's path, size, mtime and the front end), so
a second run skips extraction.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import torch

from tagger.atomic import atomic_open
from tagger.audio import AUDIO_EXTENSIONS
from tagger.datasets import TRAIN, VALID, Dataset, Split
from tagger.errors import DatasetError, TaggerError
from tagger.features import FrontEndSpec, MelgramFrontEnd, clip_with_context, file_segments

SPLIT_FILE = "clips.csv"


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    split: str
    group: str = ""  # what must stay on one side of a split (an artist); "": the clip


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("genre-tag")) / "features"


def discover_clips(root: Path, valid_share: float, seed: int) -> tuple[list[Clip], list[str]]:
    """Find ``root/GENRE/*.audio`` clips and assign each to train or valid.

    A ``clips.csv`` (columns ``file, genre, ff_split``) in ``root`` fixes the
    split, e.g. GTZAN's fault-filtered lists (rows marked ``excluded`` are
    left out). Without it, a seeded split stratified by genre holds out
    ``valid_share`` of the clips of each genre, so no clip has seconds on both
    sides.
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
        clips = _clips_from_split_file(root, split_file, genres)
    else:
        clips = _seeded_split(root, genres, valid_share, seed)
    if not any(c.split == VALID for c in clips):
        raise DatasetError("the split leaves no validation clips", str(root))
    return clips, genres


def _clips_from_split_file(root: Path, split_file: Path, genres: list[str]) -> list[Clip]:
    clips = []
    with open(split_file, newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            try:
                name, genre, split = row["file"], row["genre"], row["ff_split"]
            except KeyError as error:
                raise DatasetError(
                    f"needs the columns file, genre, ff_split (missing {error})", str(split_file)
                ) from None
            if split not in (TRAIN, VALID) or genre not in genres:
                continue
            path = root / name
            if path.is_file():
                clips.append(Clip(path, genre, split))
    if not clips:
        raise DatasetError("lists no clip that exists", str(split_file))
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
        clips += [Clip(f, genre, VALID if i < n_valid else TRAIN) for i, f in enumerate(files)]
    return sorted(clips, key=lambda c: str(c.path))


def front_end_option(options: dict[str, Any]) -> FrontEndSpec:
    """The layout option ``front_end`` (default: the course's), with ``context`` neighbouring
    seconds when that option is given."""
    spec = options.get("front_end") or FrontEndSpec()
    context = options.get("context")
    return spec if context is None else replace(spec, context_segments=context)


def _cache_key(path: Path, spec: FrontEndSpec) -> str:
    stat = path.stat()
    identity = json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns,
                           spec.melgram_identity()], sort_keys=True)
    return hashlib.sha1(identity.encode()).hexdigest()


def clip_melgrams(
    path: Path, spec: FrontEndSpec, front_end: MelgramFrontEnd, cache_dir: Path | None
) -> np.ndarray:
    """Melgrams ``(seconds, frames, mels)`` of one clip's audible seconds, cached."""
    cached = cache_dir / f"{_cache_key(path, spec)}.npy" if cache_dir else None
    if cached is not None and cached.is_file():
        return np.load(cached)
    segments = [s.samples for s in file_segments(path, spec) if not s.silent]
    with torch.inference_mode():
        melgrams = front_end(torch.from_numpy(np.stack(segments))).numpy()
    if cached is not None:
        with atomic_open(cached, "wb", encoding=None) as stream:
            np.save(stream, melgrams)
    return melgrams


def load_segment_sets(
    clips: list[Clip],
    classes: list[str],
    spec: FrontEndSpec,
    cache_dir: Path | None,
    on_clip: Callable[[str, str | None], None] | None = None,
) -> dict[str, Split]:
    """Melgrams of every clip (with the spec's context), grouped by split. Unreadable clips
    are reported and skipped."""
    front_end = MelgramFrontEnd(spec)
    parts: dict[str, list[tuple[np.ndarray, int]]] = {}
    names: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    for clip in clips:
        try:
            melgrams = clip_melgrams(clip.path, spec, front_end, cache_dir)
        except TaggerError as error:
            if on_clip:
                on_clip(str(clip.path), error.message)
            continue
        melgrams = clip_with_context(melgrams, spec.context_segments)
        parts.setdefault(clip.split, []).append((melgrams, classes.index(clip.label)))
        names.setdefault(clip.split, []).append(str(clip.path))
        groups.setdefault(clip.split, []).append(clip.group or str(clip.path))
        if on_clip:
            on_clip(str(clip.path), None)
    return {
        split: Split(
            features=np.concatenate([m for m, _ in items]).astype(np.float32),
            labels=np.concatenate([np.full(len(m), label) for m, label in items]),
            clip_ids=np.concatenate([np.full(len(m), i) for i, (m, _) in enumerate(items)]),
            clip_names=names[split],
            clip_groups=groups[split],
        )
        for split, items in parts.items()
    }


def load(root: Path, options: dict[str, Any],
         on_clip: Callable[[str, str | None], None] | None = None) -> Dataset:
    """Options: ``valid_share``, ``seed``, ``cache_dir`` (None: the user cache folder),
    ``front_end`` and ``context`` (neighbouring seconds each example also sees)."""
    spec = front_end_option(options)
    clips, classes = discover_clips(root, options.get("valid_share", 0.2), options.get("seed", 0))
    splits = load_segment_sets(clips, classes, spec,
                               options.get("cache_dir") or default_cache_dir(), on_clip)
    split_rule = ("clips.csv" if (root / SPLIT_FILE).is_file()
                  else f"seeded by clip, valid share {options.get('valid_share', 0.2)}")
    return Dataset("audio", classes, splits, spec, {"split": split_rule})
