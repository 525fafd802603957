"""k-fold cross-validation over train + valid, folds by artist where known, to choose models.

A single small validation set (GTZAN's has one or two clips of several
genres) ranks models by luck; ``k`` folds give every clip one turn in
validation. Clips of one group (a 4Q artist; otherwise the clip itself) stay
in one fold, and each genre's groups are dealt round-robin so every fold
holds every genre.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from tagger.calibration import softmax
from tagger.datasets import TRAIN, VALID, Dataset, Split
from tagger.training import (
    EpochRecord,
    TrainConfig,
    embed_rows,
    evaluate_by_source,
    model_from_backbone,
    report_probabilities,
    train_classifier,
)
from tagger.transfer import Backbone


def merge_splits(first: Split, second: Split) -> Split:
    """Both splits' rows in one split, clip ids renumbered."""
    offset = len(first.clip_names)

    def listed(split: Split, values: list[str] | None) -> list[str]:
        return values if values is not None else split.clip_names

    sources = None
    if first.clip_sources is not None and second.clip_sources is not None:
        sources = first.clip_sources + second.clip_sources
    return Split(
        np.concatenate([first.features, second.features]),
        np.concatenate([first.labels, second.labels]),
        np.concatenate([first.clip_ids, second.clip_ids + offset]),
        first.clip_names + second.clip_names,
        sources,
        listed(first, first.clip_groups) + listed(second, second.clip_groups),
    )


def group_folds(split: Split, k: int, seed: int) -> list[np.ndarray]:
    """The row indices of each of ``k`` folds: whole groups, every genre dealt round-robin."""
    groups = split.clip_groups or split.clip_names
    clip_labels = np.zeros(len(split.clip_names), dtype=np.int64)
    clip_labels[split.clip_ids] = split.labels
    members: dict[str, list[int]] = {}
    for clip in np.unique(split.clip_ids):
        members.setdefault(groups[clip], []).append(int(clip))
    by_label: dict[int, list[str]] = {}
    for group, clips in sorted(members.items()):
        label = int(np.bincount(clip_labels[clips]).argmax())
        by_label.setdefault(label, []).append(group)
    rng = random.Random(seed)
    fold_of_clip = np.full(len(split.clip_names), -1)
    turn = 0
    for label in sorted(by_label):
        rng.shuffle(by_label[label])
        for group in by_label[label]:
            fold_of_clip[members[group]] = turn % k
            turn += 1
    row_folds = fold_of_clip[split.clip_ids]
    return [np.flatnonzero(row_folds == fold) for fold in range(k)]


def fold_figures(probabilities: np.ndarray, split: Split, classes: list[str]) -> dict[str, Any]:
    """Reports per second and per clip, overall and per source (``SOURCE_per_clip``)."""
    figures = report_probabilities(probabilities, split, classes)
    for source, reports in evaluate_by_source(split, probabilities, classes).items():
        figures.update({f"{source}_{level}": report for level, report in reports.items()})
    return figures


def cross_validate(
    config: TrainConfig, dataset: Dataset, k: int, device: torch.device,
    on_epoch: Callable[[int, EpochRecord], None] | None = None,
    backbone: Backbone | None = None,
) -> dict[str, Any]:
    """Train once per fold on the other folds; the figures of every fold, their mean and
    standard deviation, and the pooled out-of-fold confusion matrices."""
    everything = merge_splits(dataset.splits[TRAIN], dataset.splits[VALID])
    folds = group_folds(everything, k, config.seed)
    pooled = np.zeros((len(everything), len(dataset.classes)))
    per_fold = []
    # A frozen backbone embeds each clip the same way whichever fold holds it: embed once.
    embedded = (embed_rows(model_from_backbone(config, dataset, device, backbone), everything,
                           device, dataset.context)
                if config.freeze_backbone and backbone is not None else None)
    for fold, held_out in enumerate(folds):
        training = np.setdiff1d(np.arange(len(everything)), held_out)
        fold_data = replace(dataset, splits={TRAIN: everything.subset(training),
                                             VALID: everything.subset(held_out)})
        outcome = train_classifier(
            config, fold_data, device,
            (lambda record, f=fold: on_epoch(f, record)) if on_epoch else None, backbone,
            {TRAIN: embedded.subset(training), VALID: embedded.subset(held_out)}
            if embedded is not None else None)
        if outcome.stopped == "interrupted":
            raise KeyboardInterrupt
        probabilities = softmax(outcome.logits(VALID, fold_data.splits[VALID], device,
                                               dataset.context))
        pooled[held_out] = probabilities
        per_fold.append(fold_figures(probabilities, fold_data.splits[VALID], dataset.classes))
    headline = {name: [fold[name]["accuracy"] for fold in per_fold] for name in per_fold[0]}
    headline.update({f"{name}_macro_f1": [fold[name]["macro_f1"] for fold in per_fold]
                     for name in per_fold[0]})
    return {
        "folds": k,
        "mean": {name: round(float(np.mean(v)), 4) for name, v in headline.items()},
        "std": {name: round(float(np.std(v)), 4) for name, v in headline.items()},
        "per_fold": headline,
        "pooled": fold_figures(pooled, everything, dataset.classes),
    }


def folds_markdown(result: dict[str, Any], classes: list[str]) -> str:
    lines = [f"# {result['folds']}-fold cross-validation over train + valid", "",
             "| figure | mean | std | folds |", "|---|---|---|---|"]
    for name, mean in result["mean"].items():
        folds = ", ".join(f"{v:.3f}" for v in result["per_fold"][name])
        lines.append(f"| {name.replace('_', ' ')} | {mean:.3f} | {result['std'][name]:.3f} "
                     f"| {folds} |")
    matrix = result["pooled"]["per_clip"]["confusion_matrix"]
    lines += ["", "Pooled out-of-fold confusion matrix, per clip (rows: true genre):", "",
              "| | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(n) for n in row) + " |"
              for name, row in zip(classes, matrix, strict=True)]
    return "\n".join(lines) + "\n"
