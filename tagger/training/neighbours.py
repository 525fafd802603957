"""Near-duplicates and same-album clusters: each clip's mean embedding through frozen
backbones, the most similar pairs across a split, and the groups they make.

``tools/estimate_groups.py`` runs these over a data set and writes the
``groups.csv`` that its split then follows (see ``tagger/datasets/groups.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from tagger.atomic import atomic_write_text
from tagger.datasets.groups import (
    centred_by_label,
    clip_stem,
    similarity_groups,
    similarity_links,
)
from tagger.datasets.melgrams import load_clips
from tagger.datasets.splits import TRAIN, Clip, clip_means
from tagger.models import build_model
from tagger.training.predict import row_embeddings
from tagger.training.transfer import Backbone, copy_backbone


def embed_clips(clips: list[Clip], backbone: Backbone, cache_dir: Path | None,
                device: torch.device,
                on_clip: Callable[[str, str | None], None] | None = None,
                ) -> tuple[list[Clip], np.ndarray]:
    """The clips that could be read and each one's mean embedding ``(clips, width)`` over its
    audible seconds, as the frozen ``backbone`` embeds them when tagging."""
    spec = backbone.front_end
    model = build_model(backbone.architecture, 2, spec.input_shape,
                        backbone.hyperparameters).to(device)
    copy_backbone(model, backbone)
    loaded = load_clips([replace(clip, split=TRAIN) for clip in clips], spec, cache_dir, None,
                        on_clip)
    if TRAIN not in loaded:
        return [], np.zeros((0, 0), dtype=np.float32)
    split = loaded[TRAIN]
    by_name = {clip.name: clip for clip in clips}
    rows = row_embeddings(model, split, device, spec.context_segments)
    vectors = clip_means(rows, split.clip_ids, len(split.clip_names)).astype(np.float32)
    return [by_name[name] for name in split.clip_names], vectors


@dataclass(frozen=True)
class Pair:
    """Two clips and the cosine similarity of their mean embeddings."""

    first: Clip
    second: Clip
    similarity: float

    @property
    def across_split(self) -> bool:
        return self.first.split != self.second.split


def similar_pairs(clips: list[Clip], vectors: np.ndarray, threshold: float) -> list[Pair]:
    """Every pair of ``clips`` at least ``threshold`` similar, most similar first."""
    return [Pair(clips[i], clips[j], similarity)
            for i, j, similarity in similarity_links(vectors, threshold)]


def genre_centred(clips: list[Clip], vectors: np.ndarray) -> np.ndarray:
    """Each clip's vector less the mean of its genre's (the clips without one: of theirs)."""
    return centred_by_label(vectors, [clip.label for clip in clips])


def estimated_groups(clips: list[Clip], vectors: np.ndarray, threshold: float,
                     files: list[str]) -> dict[str, str]:
    """The group of each clip (by its data set ``files``, in order) that shares one with
    another: the connected components of pairs whose genre-centred vectors are at least
    ``threshold`` similar, each named by its first clip's stem."""
    components = similarity_groups(genre_centred(clips, vectors), threshold)
    sizes = np.bincount(components, minlength=len(clips))
    return {clip_stem(files[i]): clip_stem(files[component])
            for i, component in enumerate(components) if sizes[component] > 1}


def write_group_table(path: Path, groups: dict[str, str]) -> None:
    """``groups.csv`` (``file, group``), atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["file", "group"])
    writer.writerows(sorted(groups.items(), key=lambda item: (item[1], item[0])))
    atomic_write_text(path, text.getvalue())
