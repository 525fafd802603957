"""Training and evaluation of genre classifiers on melgram segments."""

from __future__ import annotations

import json
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
from tagger.datasets import TRAIN, VALID, SegmentSet
from tagger.features import FrontEndSpec
from tagger.metrics import classification_report
from tagger.models import architecture_defaults, build_model, count_parameters


@dataclass
class TrainConfig:
    architecture: str = "genre-cnn"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    seed: int = 0
    # SpecAugment-style masks: up to this many mel bands / frames set to the floor.
    freq_mask: int = 16
    time_mask: int = 3


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    valid_loss: float
    valid_accuracy: float
    valid_clip_accuracy: float
    seconds: float


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def mask_spectrograms(
    batch: torch.Tensor, freq_mask: int, time_mask: int, generator: torch.Generator
) -> torch.Tensor:
    """Set one random band of mel bins and one of frames per example to the dB floor."""
    batch = batch.clone()
    floor = batch.amin(dim=(1, 2), keepdim=True)
    n, frames, mels = batch.shape
    for size, axis_len, axis in ((freq_mask, mels, 2), (time_mask, frames, 1)):
        if size <= 0:
            continue
        widths = torch.randint(0, size + 1, (n,), generator=generator)
        starts = (torch.rand(n, generator=generator) * (axis_len - widths + 1)).long()
        positions = torch.arange(axis_len).unsqueeze(0)
        band = (positions >= starts.unsqueeze(1)) & (positions < (starts + widths).unsqueeze(1))
        band = band.unsqueeze(1) if axis == 2 else band.unsqueeze(2)
        batch = torch.where(band, floor, batch)
    return batch


def predict_probabilities(
    model: nn.Module, melgrams: np.ndarray, device: torch.device, batch_size: int = 256
) -> np.ndarray:
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(melgrams), batch_size):
            batch = torch.from_numpy(melgrams[start : start + batch_size]).to(device)
            outputs.append(torch.softmax(model(batch), dim=1).cpu().numpy())
    return np.concatenate(outputs)


def clip_level(probabilities: np.ndarray, segments: SegmentSet) -> tuple[np.ndarray, np.ndarray]:
    """Mean per-second probabilities of each clip, and each clip's label."""
    n_clips = len(segments.clips)
    sums = np.zeros((n_clips, probabilities.shape[1]))
    np.add.at(sums, segments.clip_ids, probabilities)
    counts = np.bincount(segments.clip_ids, minlength=n_clips)[:, None]
    labels = np.zeros(n_clips, dtype=np.int64)
    labels[segments.clip_ids] = segments.labels
    return sums / np.maximum(counts, 1), labels


def evaluate(
    model: nn.Module, segments: SegmentSet, classes: list[str], device: torch.device
) -> dict[str, Any]:
    """Per-second and per-clip reports for one split."""
    probabilities = predict_probabilities(model, segments.melgrams, device)
    clip_probabilities, clip_labels = clip_level(probabilities, segments)
    return {
        "per_second": classification_report(segments.labels, probabilities.argmax(1), classes),
        "per_clip": classification_report(clip_labels, clip_probabilities.argmax(1), classes),
    }


def train_classifier(
    config: TrainConfig,
    sets: dict[str, SegmentSet],
    classes: list[str],
    input_shape: tuple[int, int],
    device: torch.device,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> tuple[nn.Module, list[EpochRecord]]:
    """Train for a fixed number of epochs with class-balanced loss; return the last model."""
    generator = seed_everything(config.seed)
    model = build_model(config.architecture, len(classes), input_shape, config.hyperparameters)
    model.to(device)
    train, valid = sets[TRAIN], sets[VALID]
    counts = np.bincount(train.labels, minlength=len(classes)).astype(np.float64)
    weights = counts.sum() / (len(classes) * np.maximum(counts, 1))
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32, device=device),
        label_smoothing=config.label_smoothing,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(train) // config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    melgrams = torch.from_numpy(train.melgrams)
    labels = torch.from_numpy(train.labels)
    history = []
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total_loss, correct = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            batch = mask_spectrograms(melgrams[index], config.freq_mask, config.time_mask,
                                      generator).to(device)
            target = labels[index].to(device)
            logits = model(batch)
            loss = loss_fn(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(index)
            correct += int((logits.argmax(1) == target).sum())
        valid_probabilities = predict_probabilities(model, valid.melgrams, device)
        valid_loss = float(nn.functional.nll_loss(
            torch.log(torch.from_numpy(valid_probabilities).clamp(min=1e-9)),
            torch.from_numpy(valid.labels),
        ))
        clip_probabilities, clip_labels = clip_level(valid_probabilities, valid)
        record = EpochRecord(
            epoch=epoch,
            train_loss=total_loss / len(train),
            train_accuracy=correct / len(train),
            valid_loss=valid_loss,
            valid_accuracy=float((valid_probabilities.argmax(1) == valid.labels).mean()),
            valid_clip_accuracy=float((clip_probabilities.argmax(1) == clip_labels).mean()),
            seconds=time.perf_counter() - started,
        )
        history.append(record)
        if on_epoch:
            on_epoch(record)
    model.eval()
    return model, history


def write_run(
    out_dir: Path,
    model: nn.Module,
    config: TrainConfig,
    classes: list[str],
    spec: FrontEndSpec,
    sets: dict[str, SegmentSet],
    history: list[EpochRecord],
    device: torch.device,
    provenance: dict[str, Any],
    name: str,
) -> ModelCard:
    """Evaluate on every split and write the checkpoint, its card and metrics.json."""
    evaluation = {split: evaluate(model, s, classes, device) for split, s in sets.items()}
    summary = {
        split: {
            "clips": len(s.clips),
            "seconds": len(s),
            "per_second_accuracy": round(e["per_second"]["accuracy"], 4),
            "per_second_macro_f1": round(e["per_second"]["macro_f1"], 4),
            "per_clip_accuracy": round(e["per_clip"]["accuracy"], 4),
            "per_clip_macro_f1": round(e["per_clip"]["macro_f1"], 4),
            "per_clip_confusion_matrix": e["per_clip"]["confusion_matrix"],
        }
        for (split, e), s in zip(evaluation.items(), sets.values(), strict=True)
    }
    card = ModelCard(
        name=name,
        task="genre",
        classes=classes,
        architecture=config.architecture,
        hyperparameters={**architecture_defaults(config.architecture), **config.hyperparameters},
        front_end=spec,
        training={
            **provenance,
            "config": asdict(config),
            "parameters": count_parameters(model),
            "epochs_run": len(history),
            "seconds_per_epoch": round(float(np.mean([h.seconds for h in history])), 2),
        },
        evaluation=summary,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, card, out_dir / "model.safetensors")
    metrics = {"evaluation": evaluation, "history": [asdict(h) for h in history]}
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return card
