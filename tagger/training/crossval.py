"""k-fold cross-validation over train + valid, folds by artist where known, to choose models.

A single small validation set (GTZAN's has one or two clips of several
genres) ranks models by luck; ``k`` folds give every clip one turn in
validation. Clips of one group (a 4Q artist; otherwise the clip itself) stay
in one fold, and each genre's groups are dealt round-robin so every fold
holds every genre.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from rich.console import Console

from tagger.atomic import atomic_write_text
from tagger.datasets.splits import TRAIN, VALID, Dataset, Split, join_splits
from tagger.devices import select_device
from tagger.errors import TaggerError
from tagger.results import softmax
from tagger.training.genre import (
    GenreEpoch,
    evaluate_by_source,
    model_from_backbone,
    report_probabilities,
    train_classifier,
)
from tagger.training.options import GenreConfig, GenreOptions, RunResult
from tagger.training.predict import embed_rows
from tagger.training.run_folder import clear_run_folder, write_config
from tagger.training.transfer import Backbone


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
    config: GenreConfig, dataset: Dataset, k: int, device: torch.device,
    on_epoch: Callable[[int, GenreEpoch], None] | None = None,
    backbone: Backbone | None = None,
) -> dict[str, Any]:
    """Train once per fold on the other folds; the figures of every fold, their mean and
    standard deviation, and the pooled out-of-fold confusion matrices."""
    everything = join_splits([dataset.splits[TRAIN], dataset.splits[VALID]])
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


def run_folds(options: GenreOptions, dataset: Dataset, command: str, console: Console,
              backbone: Backbone | None) -> RunResult:
    """``--folds K``: k-fold figures over train + valid into ``folds.json`` and ``folds.md``
    (and the run's ``config.json``), once an earlier run's files are removed."""
    if options.folds < 2:
        raise TaggerError(f"--folds {options.folds} needs at least 2 folds")

    def on_epoch(fold: int, record: GenreEpoch) -> None:
        console.print(f"fold {fold + 1}/{options.folds} {record.describe()}  "
                      f"{record.seconds:.1f}s", highlight=False)

    result = cross_validate(options.train, dataset, options.folds,
                            select_device(options.device), on_epoch, backbone)
    result["command"] = command
    clear_run_folder(options.run_dir)
    options.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(options.run_dir / "folds.json", json.dumps(result, indent=2) + "\n")
    table = folds_markdown(result, dataset.classes)
    atomic_write_text(options.run_dir / "folds.md", table)
    write_config(options)
    console.print(table, highlight=False)
    return RunResult(options.run_dir, "completed", result)
