"""Clips to melgrams: every clip goes through the tagger's own decoder, segmenter and front
end (or, for NTUA spectrograms, an approximation of it), so training sees exactly the
features that tagging computes.

Melgrams are cached per clip on disk (keyed by the file's path, size, mtime and
the front end), so a second run skips extraction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from tagger.atomic import atomic_open
from tagger.datasets.ntua import spectrogram_melgrams
from tagger.datasets.splits import Clip, Split
from tagger.errors import TaggerError
from tagger.features import FrontEndSpec, MelgramFrontEnd, clip_with_context, file_segments

SPECTROGRAM_SUFFIXES = (".npy", ".npy.gz")


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("genre-tag")) / "features"


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
    if path.name.endswith(SPECTROGRAM_SUFFIXES):
        return spectrogram_melgrams(path, spec)
    cached = cache_dir / f"{_cache_key(path, spec)}.npy" if cache_dir else None
    if cached is not None and cached.is_file():
        return np.load(cached)
    segments = [s.samples for s in file_segments(path, spec) if not s.silent]
    melgrams = front_end(np.stack(segments))
    if cached is not None:
        with atomic_open(cached, "wb", encoding=None) as stream:
            np.save(stream, melgrams)
    return melgrams


def load_clips(
    clips: list[Clip],
    spec: FrontEndSpec,
    cache_dir: Path | None,
    classes: list[str] | None = None,
    on_clip: Callable[[str, str | None], None] | None = None,
) -> dict[str, Split]:
    """Melgrams of every clip (with the spec's context), grouped by split: labelled with
    the index of each clip's genre in ``classes``, or, without ``classes``, with each clip's
    emotion targets. Unreadable clips are reported and skipped."""
    front_end = MelgramFrontEnd(spec)
    parts: dict[str, list[tuple[np.ndarray, Clip]]] = {}
    for clip in clips:
        try:
            melgrams = clip_melgrams(clip.path, spec, front_end, cache_dir)
        except TaggerError as error:
            if on_clip:
                on_clip(str(clip.path), error.message)
            continue
        melgrams = clip_with_context(melgrams, spec.context_segments)
        parts.setdefault(clip.split, []).append((melgrams, clip))
        if on_clip:
            on_clip(str(clip.path), None)
    return {split: _split_of(items, classes) for split, items in parts.items()}


def _split_of(items: list[tuple[np.ndarray, Clip]], classes: list[str] | None) -> Split:
    kept = [clip for _, clip in items]
    labels = [classes.index(clip.label) if classes else 0 for clip in kept]
    return Split(
        features=np.concatenate([m for m, _ in items]).astype(np.float32, copy=False),
        labels=np.concatenate([np.full(len(m), label) for (m, _), label
                               in zip(items, labels, strict=True)]),
        clip_ids=np.concatenate([np.full(len(m), i) for i, (m, _) in enumerate(items)]),
        clip_names=[clip.name for clip in kept],
        clip_sources=None if classes else [clip.source for clip in kept],
        clip_groups=[clip.group or clip.name for clip in kept],
        clip_targets=None if classes else np.array(
            [clip.targets for clip in kept], dtype=np.float32).reshape(len(kept), -1),
        clip_notes=None if classes else [clip.notes for clip in kept],
    )
