"""The emotion task's half of training: a multitask loss over valence, energy and
danceability, and Spearman's correlation per target.

Clip-level targets apply to every second of a clip; a clip's value is the
mean of its seconds' values (the comparison script also measures a learned
attention pooling against that mean). Each epoch draws a few random seconds
of every training clip, so long and short clips weigh the same and an epoch
costs little. Backbones that share work between neighbouring seconds
(musicnn) stay frozen: each second is embedded once, clip by clip as tagging
streams a song, and the head learns from those embeddings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tagger.datasets.labels import average_ranks
from tagger.datasets.splits import TRAIN, VALID, Split, clip_means, rows_by_clip
from tagger.tasks import TARGETS
from tagger.training.loop import Outcome, mask_spectrograms, train
from tagger.training.options import EmotionConfig
from tagger.training.predict import embed_rows
from tagger.training.transfer import (
    StartingPoint,
    backbone_and_head,
    build_emotion_model,
    init_from_genre,
)


@dataclass
class EmotionEpoch:
    epoch: int
    train_loss: float
    valid_loss: float
    valid_spearman: dict[str, float | None]
    lr: float
    seconds: float

    def score(self, select: str) -> float:
        return -self.valid_loss if select == "loss" else self.epoch

    def describe(self) -> str:
        scores = "  ".join(f"{k} {v}" for k, v in self.valid_spearman.items())
        return (f"epoch {self.epoch:3d}  loss {self.train_loss:.3f}  "
                f"valid loss {self.valid_loss:.3f}  valid Spearman {scores}")


# -- metrics --------------------------------------------------------------------------------


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (ties get average ranks); NaN pairs are left out.

    NaN when fewer than three pairs remain or either side is constant.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 3:
        return math.nan
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else math.nan


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def evaluate_clips(
    clip_predictions: np.ndarray, split: Split, targets: tuple[str, ...]
) -> dict[str, Any]:
    """Spearman per target over the clips of ``split`` that have it, pooled and per data set.

    For 4Q clips also against the raw labels: the quadrant signs and the mood
    words' mean valence/arousal.
    """
    assert split.clip_targets is not None and split.clip_sources is not None
    truth, sources = split.clip_targets, np.array(split.clip_sources)
    notes = split.clip_notes or [{} for _ in split.clip_names]
    report: dict[str, Any] = {}
    for k, name in enumerate(targets):
        column = truth[:, TARGETS.index(name)]
        entry: dict[str, Any] = {
            "spearman": _round(spearman(clip_predictions[:, k], column)),
            "clips": int((~np.isnan(column)).sum()),
            "per_dataset": {},
        }
        for source in sorted(set(sources)):
            rows = (sources == source) & ~np.isnan(column)
            if rows.sum() >= 3:
                entry["per_dataset"][source] = {
                    "spearman": _round(spearman(clip_predictions[rows, k], column[rows])),
                    "clips": int(rows.sum()),
                }
        raw = {"valence": ("valence_q", "valence_words"), "energy": ("arousal_q", "arousal_words")}
        rows = sources == "4q"
        if name in raw and rows.sum() >= 3:
            for label in raw[name]:
                values = np.array([notes[i].get(label, math.nan) for i in np.flatnonzero(rows)])
                entry["per_dataset"].setdefault("4q", {})[f"spearman_vs_{label}"] = _round(
                    spearman(clip_predictions[rows, k], values))
        report[name] = entry
    return report


# -- loss -----------------------------------------------------------------------------------


def loss_weights(targets: np.ndarray) -> np.ndarray:
    """One weight per target: 1 / variance of its observed training values, mean 1.

    Dividing each target's mean squared error by its variance puts every loss
    on the same scale (1.0 for a model that always predicts the mean).
    """
    variances = np.array([np.nanvar(column) if (~np.isnan(column)).sum() > 1 else 1.0
                          for column in targets.T])
    weights = 1.0 / np.maximum(variances, 1e-6)
    return (weights / weights.mean()).astype(np.float32)


def multitask_loss(
    predictions: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted sum over targets of each target's mean squared error over the rows that have it.

    ``targets`` holds NaN where a row has no label for a target; those entries
    add nothing to the loss or its gradient. A target absent from the whole
    batch adds zero.
    """
    observed = ~torch.isnan(targets)
    filled = torch.where(observed, targets, predictions.detach())
    squared = (predictions - filled).pow(2) * observed
    counts = observed.sum(dim=0)
    per_target = squared.sum(dim=0) / counts.clamp(min=1)
    return (weights * per_target).sum()


# -- prediction -----------------------------------------------------------------------------


def predict_seconds(
    model: nn.Module, melgrams: np.ndarray, device: torch.device, batch_size: int = 256,
    with_embeddings: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-second predictions ``(N, targets)`` and optionally embeddings ``(N, width)``."""
    model.eval()
    outputs, embeddings = [], []
    with torch.inference_mode():
        for start in range(0, len(melgrams), batch_size):
            batch = torch.from_numpy(melgrams[start : start + batch_size]).to(device)
            if with_embeddings:
                embedding = model.embed(batch)
                embeddings.append(embedding.cpu().numpy())
                outputs.append(model.head(embedding).cpu().numpy())
            else:
                outputs.append(model(batch).cpu().numpy())
    return np.concatenate(outputs), (np.concatenate(embeddings) if with_embeddings else None)


def predict_from_embeddings(model: nn.Module, embeddings: np.ndarray,
                            device: torch.device) -> np.ndarray:
    """The outputs of an emotion model's head on its backbone's ``embeddings``."""
    model.eval()
    with torch.inference_mode():
        return model.head(torch.from_numpy(embeddings).to(device)).cpu().numpy()


def _evenly_spaced(rows: np.ndarray, count: int) -> np.ndarray:
    if len(rows) <= count:
        return rows
    return rows[np.linspace(0, len(rows) - 1, count).round().astype(int)]


def subsample_seconds(split: Split, per_clip: int | None) -> Split:
    """The same clips with at most ``per_clip`` evenly spaced seconds each (None: all)."""
    if per_clip is None:
        return split
    rows = np.concatenate([_evenly_spaced(r, per_clip)
                           for r in rows_by_clip(split.clip_ids, len(split.clip_names))])
    return split.subset(rows)


# -- training -------------------------------------------------------------------------------


class EmotionRun:
    """One emotion training run of ``config`` from ``start`` (see ``loop.TaskRun``);
    ``splits`` went through the starting point's front end."""

    def __init__(self, config: EmotionConfig, splits: dict[str, Split], start: StartingPoint,
                 device: torch.device, generator: torch.Generator) -> None:
        self.config, self.device, self.generator = config, device, generator
        self.rng = np.random.default_rng(config.seed)
        columns = [TARGETS.index(t) for t in config.targets]
        self.model = build_emotion_model(len(columns), start, config.hyperparameters)
        self.init = dict(start.note)
        if start.backbone is not None:
            self.init["tensors_copied"] = init_from_genre(self.model, start)
        self.model.to(device)
        self.embedded: dict[str, Split] = {}
        if self.model.reads_runs:
            self.init["frozen"] = True
            self.embedded = {name: embed_rows(self.model, split, device,
                                              start.spec.context_segments)
                             for name, split in splits.items()}
        train, valid = splits[TRAIN], splits[VALID]
        assert train.clip_targets is not None and valid.clip_targets is not None
        train_targets = train.clip_targets[:, columns]
        self.usable = np.flatnonzero(~np.isnan(train_targets).all(axis=1))
        self.train_rows = rows_by_clip(train.clip_ids, len(train.clip_names))
        self.valid, self.valid_targets = valid, valid.clip_targets[:, columns]
        self.valid_clips = np.flatnonzero(~np.isnan(self.valid_targets).all(axis=1))
        valid_rows = rows_by_clip(valid.clip_ids, len(valid.clip_names))
        self.valid_rows = np.concatenate([_evenly_spaced(valid_rows[i],
                                                         config.valid_seconds_per_clip)
                                          for i in self.valid_clips])
        self.weights = torch.from_numpy(loss_weights(train_targets[self.usable])).to(device)
        self.backbone_lr = config.lr * (config.backbone_lr_scale if start.backbone is not None
                                        else 1.0)
        self.rows_per_epoch = sum(min(config.seconds_per_clip, len(self.train_rows[i]))
                                  for i in self.usable)
        self.inputs = torch.from_numpy(self.embedded[TRAIN].features if self.embedded
                                       else train.features)
        self.trainee: nn.Module = self.model.head if self.embedded else self.model
        self.row_targets = torch.from_numpy(train_targets[train.clip_ids])

    def parameter_groups(self) -> list[dict[str, Any]]:
        backbone, head = backbone_and_head(self.model)
        groups = [{"params": head, "lr": self.config.lr}]
        if not self.embedded:
            groups.insert(0, {"params": backbone, "lr": self.backbone_lr})
        return groups

    def epoch_order(self) -> torch.Tensor:
        per_clip = self.config.seconds_per_clip
        chosen = np.concatenate([
            self.rng.choice(self.train_rows[i], min(per_clip, len(self.train_rows[i])),
                            replace=False) for i in self.usable])
        return torch.from_numpy(chosen[self.rng.permutation(len(chosen))])

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = self.inputs[index]
        if not self.embedded:
            inputs = mask_spectrograms(inputs, self.config.freq_mask, self.config.time_mask,
                                       self.generator)
        return inputs.to(self.device), self.row_targets[index].to(self.device)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return multitask_loss(outputs, targets, self.weights)

    def validate(self, epoch: int, train_loss: float, lr: float, started: float) -> EmotionEpoch:
        valid, rows = self.valid, self.valid_rows
        if self.embedded:
            predictions = predict_from_embeddings(self.model, self.embedded[VALID].features[rows],
                                                  self.device)
        else:
            predictions = predict_seconds(self.model, valid.features[rows], self.device)[0]
        valid_loss = float(multitask_loss(
            torch.from_numpy(predictions),
            torch.from_numpy(self.valid_targets[valid.clip_ids[rows]]), self.weights.cpu()))
        means = clip_means(predictions, valid.clip_ids[rows], len(valid.clip_names))
        return EmotionEpoch(
            epoch=epoch, train_loss=train_loss, valid_loss=valid_loss,
            valid_spearman={name: _round(spearman(means[self.valid_clips, k],
                                                  self.valid_targets[self.valid_clips, k]))
                            for k, name in enumerate(self.config.targets)},
            lr=lr, seconds=time.perf_counter() - started)


def train_emotion(
    config: EmotionConfig,
    splits: dict[str, Split],
    start: StartingPoint,
    device: torch.device,
    on_epoch: Callable[[EmotionEpoch], None] | None = None,
) -> tuple[Outcome, dict[str, Any]]:
    """Train from ``start`` and return the outcome and a note on the model's initialisation
    for its card."""
    run: EmotionRun | None = None

    def begin(generator: torch.Generator) -> EmotionRun:
        nonlocal run
        run = EmotionRun(config, splits, start, device, generator)
        return run

    outcome = train(config, begin, on_epoch)
    assert run is not None
    return outcome, run.init


def evaluate_model(
    model: nn.Module, config: EmotionConfig, splits: dict[str, Split], device: torch.device,
    seconds_per_clip: dict[str, int | None] | None = None, with_embeddings: bool = False,
    embedded: dict[str, Split] | None = None,
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray | None]]]:
    """Spearman per target of each split's clip means, over every second of every clip.

    ``seconds_per_clip`` limits a split to that many evenly spaced seconds per
    clip (cheaper; the report says so). A frozen backbone's ``embedded`` splits
    (from training) are scored whole through the head. Returns the report and,
    per split, the per-second predictions (and embeddings when asked for).
    """
    report, outputs = {}, {}
    for name, full in splits.items():
        if embedded and name in embedded:
            per_clip, split = None, full
            embeddings = embedded[name].features
            predictions = predict_from_embeddings(model, embeddings, device)
        else:
            per_clip = (seconds_per_clip or {}).get(name)
            split = subsample_seconds(full, per_clip)
            predictions, embeddings = predict_seconds(model, split.features, device,
                                                      with_embeddings=with_embeddings)
        means = clip_means(predictions, split.clip_ids, len(split.clip_names))
        report[name] = {"clips": len(split.clip_names), "seconds": len(split),
                        "seconds_per_clip": per_clip or "all",
                        "per_target": evaluate_clips(means, split, config.targets)}
        outputs[name] = (predictions, embeddings)
    return report, outputs


def emotion_card_fields(config: EmotionConfig, start: StartingPoint) -> dict[str, Any]:
    """What an emotion model's card holds beyond every card's fields."""
    return {
        "architecture": start.architecture,
        "hyperparameters": start.model_hyperparameters(config.hyperparameters),
        "training": {"config": {**asdict(config), "targets": list(config.targets)}},
    }
