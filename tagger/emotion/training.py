"""Training and evaluation of emotion regressors: multitask loss, Spearman per target.

Clip-level targets apply to every second of a clip; a clip's value is the
mean of its seconds' values (the comparison script also measures a learned
attention pooling against that mean). Each epoch draws a few random seconds
of every training clip, so long and short clips weigh the same and an epoch
costs little.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tagger.atomic import atomic_write_text
from tagger.checkpoints import ModelCard, save_checkpoint
from tagger.datasets import Split
from tagger.emotion import TARGETS
from tagger.emotion.datasets import TRAIN, VALID, EmotionSet, average_ranks
from tagger.emotion.model import (
    StartingPoint,
    backbone_and_head,
    build_emotion_model,
    init_from_genre,
)
from tagger.models import count_parameters
from tagger.training import mask_spectrograms, row_embeddings, seed_everything


@dataclass
class EmotionConfig:
    targets: tuple[str, ...] = TARGETS
    init: str = "genre"  # "genre" or "scratch": see tagger.emotion.model.starting_point
    epochs: int = 12
    seconds_per_clip: int = 4  # random seconds of each training clip per epoch
    batch_size: int = 64
    lr: float = 1e-3
    backbone_lr_scale: float = 0.5  # fine-tuning: the backbone learns more slowly
    weight_decay: float = 1e-2
    seed: int = 0
    freq_mask: int = 16
    time_mask: int = 3
    hyperparameters: dict[str, Any] = field(default_factory=lambda: {"head_hidden": 64})
    valid_seconds_per_clip: int = 8  # evenly spaced seconds per held-out clip for epoch curves


@dataclass
class EmotionEpoch:
    epoch: int
    train_loss: float
    valid_loss: float
    valid_spearman: dict[str, float]
    seconds: float


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


def clip_means(values: np.ndarray, clip_ids: np.ndarray, n_clips: int) -> np.ndarray:
    sums = np.zeros((n_clips, values.shape[1]))
    np.add.at(sums, clip_ids, values)
    counts = np.bincount(clip_ids, minlength=n_clips)[:, None]
    return sums / np.maximum(counts, 1)


def target_columns(config: EmotionConfig) -> list[int]:
    return [TARGETS.index(t) for t in config.targets]


def evaluate_clips(
    clip_predictions: np.ndarray, emotion_set: EmotionSet, targets: tuple[str, ...]
) -> dict[str, Any]:
    """Spearman per target over the clips that have it, pooled and per dataset.

    For 4Q clips also against the raw labels: the quadrant signs and the mood
    words' mean valence/arousal.
    """
    truth = emotion_set.targets
    datasets = emotion_set.datasets
    report: dict[str, Any] = {}
    for k, name in enumerate(targets):
        column = truth[:, TARGETS.index(name)]
        entry: dict[str, Any] = {
            "spearman": _round(spearman(clip_predictions[:, k], column)),
            "clips": int((~np.isnan(column)).sum()),
            "per_dataset": {},
        }
        for dataset in sorted(set(datasets)):
            rows = (datasets == dataset) & ~np.isnan(column)
            if rows.sum() >= 3:
                entry["per_dataset"][dataset] = {
                    "spearman": _round(spearman(clip_predictions[rows, k], column[rows])),
                    "clips": int(rows.sum()),
                }
        raw = {"valence": ("valence_q", "valence_words"), "energy": ("arousal_q", "arousal_words")}
        rows = datasets == "4q"
        if name in raw and rows.sum() >= 3:
            for label in raw[name]:
                values = np.array([emotion_set.clips[i].labels.get(label, math.nan)
                                   for i in np.flatnonzero(rows)])
                entry["per_dataset"].setdefault("4q", {})[f"spearman_vs_{label}"] = _round(
                    spearman(clip_predictions[rows, k], values))
        report[name] = entry
    return report


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


# -- training -------------------------------------------------------------------------------


def _rows_by_clip(emotion_set: EmotionSet) -> list[np.ndarray]:
    order = np.argsort(emotion_set.clip_ids, kind="stable")
    bounds = np.searchsorted(emotion_set.clip_ids[order], np.arange(len(emotion_set.clips) + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(len(emotion_set.clips))]


def _evenly_spaced(rows: np.ndarray, count: int) -> np.ndarray:
    if len(rows) <= count:
        return rows
    return rows[np.linspace(0, len(rows) - 1, count).round().astype(int)]


def as_split(emotion_set: EmotionSet) -> Split:
    """The set's seconds grouped by clip, as the genre code's run-aware predictions take
    them (labels unused)."""
    return Split(emotion_set.melgrams, np.zeros(len(emotion_set), dtype=np.int64),
                 emotion_set.clip_ids, [clip.key for clip in emotion_set.clips])


def train_emotion(
    config: EmotionConfig,
    sets: dict[str, EmotionSet],
    start: StartingPoint,
    device: torch.device,
    on_epoch: Callable[[EmotionEpoch], None] | None = None,
) -> tuple[nn.Module, list[EmotionEpoch], dict[str, Any], dict[str, np.ndarray]]:
    """Train for a fixed number of epochs from ``start`` (``sets`` went through its front
    end) and return the last model, its history, a note on its initialisation and, for a
    frozen backbone, every split's embeddings (which the head alone maps to outputs).

    Backbones that share work between neighbouring seconds (musicnn) stay frozen: each
    second is embedded once, clip by clip as tagging streams a song, and the head learns
    from those embeddings."""
    generator = seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    columns = target_columns(config)
    model = build_emotion_model(len(columns), start, config.hyperparameters)
    init = dict(start.note)
    if start.backbone is not None:
        init["tensors_copied"] = init_from_genre(model, start)
    model.to(device)
    embedded: dict[str, np.ndarray] = {}
    if model.reads_runs:
        init["frozen"] = True
        embedded = {name: row_embeddings(model, as_split(emotion_set), device,
                                         start.spec.context_segments)
                    for name, emotion_set in sets.items()}
    train, valid = sets[TRAIN], sets[VALID]
    train_targets = train.targets[:, columns]
    usable = np.flatnonzero(~np.isnan(train_targets).all(axis=1))
    train_rows = _rows_by_clip(train)
    valid_targets = valid.targets[:, columns]
    valid_clips = np.flatnonzero(~np.isnan(valid_targets).all(axis=1))
    valid_rows = np.concatenate([_evenly_spaced(r, config.valid_seconds_per_clip)
                                 for r in (_rows_by_clip(valid)[i] for i in valid_clips)])
    weights = torch.from_numpy(loss_weights(train_targets[usable])).to(device)
    backbone, head = backbone_and_head(model)
    backbone_lr = config.lr * (config.backbone_lr_scale if start.backbone is not None else 1.0)
    groups = [{"params": head, "lr": config.lr}]
    if not embedded:
        groups.insert(0, {"params": backbone, "lr": backbone_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    per_epoch = sum(min(config.seconds_per_clip, len(train_rows[i])) for i in usable)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[group["lr"] for group in groups],
        total_steps=config.epochs * -(-per_epoch // config.batch_size))
    inputs = torch.from_numpy(embedded[TRAIN] if embedded else train.melgrams)
    trainee: nn.Module = model.head if embedded else model

    def outputs(index: torch.Tensor) -> torch.Tensor:
        if embedded:
            return model.head(inputs[index].to(device))
        return model(mask_spectrograms(inputs[index], config.freq_mask, config.time_mask,
                                       generator).to(device))

    def valid_predictions() -> np.ndarray:
        if embedded:
            return predict_from_embeddings(model, embedded[VALID][valid_rows], device)
        return predict_seconds(model, valid.melgrams[valid_rows], device)[0]

    second_targets = torch.from_numpy(train_targets[train.clip_ids])
    history = []
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        trainee.train()
        chosen = np.concatenate([
            rng.choice(train_rows[i], min(config.seconds_per_clip, len(train_rows[i])),
                       replace=False) for i in usable])
        chosen = torch.from_numpy(chosen[rng.permutation(len(chosen))])
        total = 0.0
        for start in range(0, len(chosen), config.batch_size):
            index = chosen[start : start + config.batch_size]
            loss = multitask_loss(outputs(index), second_targets[index].to(device), weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(index)
        predictions = valid_predictions()
        valid_loss = float(multitask_loss(
            torch.from_numpy(predictions),
            torch.from_numpy(valid_targets[valid.clip_ids[valid_rows]]), weights.cpu()))
        means = clip_means(predictions, valid.clip_ids[valid_rows], len(valid.clips))
        record = EmotionEpoch(
            epoch=epoch, train_loss=total / len(chosen), valid_loss=valid_loss,
            valid_spearman={name: _round(spearman(means[valid_clips, k],
                                                  valid_targets[valid_clips, k]))
                            for k, name in enumerate(config.targets)},
            seconds=time.perf_counter() - started,
        )
        history.append(record)
        if on_epoch:
            on_epoch(record)
    model.eval()
    return model, history, init, embedded


def predict_from_embeddings(model: nn.Module, embeddings: np.ndarray,
                            device: torch.device) -> np.ndarray:
    """The outputs of an emotion model's head on its backbone's ``embeddings``."""
    model.eval()
    with torch.inference_mode():
        return model.head(torch.from_numpy(embeddings).to(device)).cpu().numpy()


def subsample_seconds(emotion_set: EmotionSet, per_clip: int | None) -> EmotionSet:
    """The same clips with at most ``per_clip`` evenly spaced seconds each (None: all)."""
    if per_clip is None:
        return emotion_set
    rows = np.concatenate([_evenly_spaced(r, per_clip) for r in _rows_by_clip(emotion_set)])
    return EmotionSet(emotion_set.melgrams[rows], emotion_set.clip_ids[rows], emotion_set.clips)


def evaluate_model(
    model: nn.Module, config: EmotionConfig, sets: dict[str, EmotionSet], device: torch.device,
    seconds_per_clip: dict[str, int | None] | None = None, with_embeddings: bool = False,
    embedded: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray | None]]]:
    """Spearman per target of each split's clip means, over every second of every clip.

    ``seconds_per_clip`` limits a split to that many evenly spaced seconds per
    clip (cheaper; the report says so). A frozen backbone's ``embedded`` splits
    (from ``train_emotion``) are scored whole through the head. Returns the
    report and, per split, the per-second predictions (and embeddings when asked
    for).
    """
    report, outputs = {}, {}
    for split, full_set in sets.items():
        if embedded and split in embedded:
            per_clip, emotion_set = None, full_set
            embeddings = embedded[split]
            predictions = predict_from_embeddings(model, embeddings, device)
        else:
            per_clip = (seconds_per_clip or {}).get(split)
            emotion_set = subsample_seconds(full_set, per_clip)
            predictions, embeddings = predict_seconds(model, emotion_set.melgrams, device,
                                                      with_embeddings=with_embeddings)
        means = clip_means(predictions, emotion_set.clip_ids, len(emotion_set.clips))
        report[split] = {"clips": len(emotion_set.clips), "seconds": len(emotion_set),
                         "seconds_per_clip": per_clip or "all",
                         "per_target": evaluate_clips(means, emotion_set, config.targets)}
        outputs[split] = (predictions, embeddings)
    return report, outputs


def write_emotion_run(
    out_dir: Path,
    model: nn.Module,
    config: EmotionConfig,
    start: StartingPoint,
    history: list[EmotionEpoch],
    evaluation: dict[str, Any],
    provenance: dict[str, Any],
    name: str,
) -> ModelCard:
    """Write the checkpoint (task ``emotion``, classes = the targets), its card and metrics."""
    card = ModelCard(
        name=name,
        task="emotion",
        classes=list(config.targets),
        architecture=start.architecture,
        hyperparameters=start.model_hyperparameters(config.hyperparameters),
        front_end=start.spec,
        input_shape=start.spec.input_shape,
        training={
            **provenance,
            "config": {**asdict(config), "targets": list(config.targets)},
            "parameters": count_parameters(model),
            "epochs_run": len(history),
            "seconds_per_epoch": round(float(np.mean([h.seconds for h in history])), 2),
            "training_seconds": round(float(sum(h.seconds for h in history)), 1),
        },
        evaluation=evaluation,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, card, out_dir / "model.safetensors")
    metrics = {"evaluation": evaluation, "history": [asdict(h) for h in history]}
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return card
