"""The genre task's half of training: cross-entropy over classes, accuracy and macro-F1
per second and per clip, per source, and a calibrated temperature.

``GenreRun`` adds to the one loop (``loop.py``) class-balanced loss, epochs
balanced by genre and clip, spectrogram augmentations, an overfit-one-batch
check and a frozen transferred backbone (its head trained on embeddings
computed once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tagger.datasets.splits import TRAIN, VALID, Dataset, Split, clip_means
from tagger.models import Classifier, architecture_defaults, build_model
from tagger.results import softmax
from tagger.training.augment import Augmentation
from tagger.training.calibration import calibrate
from tagger.training.loop import Outcome, mask_spectrograms, train
from tagger.training.metrics import classification_report
from tagger.training.options import GenreConfig
from tagger.training.predict import embed_rows, predict_logits
from tagger.training.transfer import Backbone, copy_backbone


@dataclass
class GenreEpoch:
    epoch: int
    train_loss: float
    train_accuracy: float
    valid_loss: float
    valid_accuracy: float
    valid_macro_f1: float
    valid_clip_accuracy: float | None
    lr: float
    seconds: float

    def score(self, select: str) -> float:
        return {"f1": self.valid_macro_f1, "loss": -self.valid_loss}.get(select, self.epoch)

    def describe(self) -> str:
        clip = (f"  valid acc/clip {self.valid_clip_accuracy:.3f}"
                if self.valid_clip_accuracy is not None else "")
        return (f"epoch {self.epoch:3d}  loss {self.train_loss:.3f}  "
                f"acc {self.train_accuracy:.3f}  valid loss {self.valid_loss:.3f}  "
                f"acc {self.valid_accuracy:.3f}  F1 {self.valid_macro_f1:.3f}{clip}")


def balanced_row_weights(split: Split, n_classes: int) -> torch.Tensor:
    """Sampling weights giving every class, and every clip within its class, equal weight."""
    rows_per_clip = np.bincount(split.clip_ids)[split.clip_ids]
    clip_labels = np.zeros(split.clip_ids.max() + 1, dtype=np.int64)
    clip_labels[split.clip_ids] = split.labels
    present = np.zeros(len(clip_labels), dtype=bool)
    present[split.clip_ids] = True
    clips_per_class = np.bincount(clip_labels[present], minlength=n_classes)
    return torch.from_numpy(1.0 / (rows_per_clip * clips_per_class[split.labels]))


def model_from_backbone(config: GenreConfig, dataset: Dataset, device: torch.device,
                        backbone: Backbone) -> Classifier:
    model = build_model(config.architecture, len(dataset.classes), dataset.input_shape,
                        config.hyperparameters).to(device)
    copy_backbone(model, backbone)
    return model


def predict_probabilities(model: nn.Module, split: Split, device: torch.device,
                          context: int = 0) -> np.ndarray:
    return softmax(predict_logits(model, split, device, context))


def clip_level(probabilities: np.ndarray, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Mean row probabilities of each clip, and each clip's label."""
    n_clips = len(split.clip_names)
    labels = np.zeros(n_clips, dtype=np.int64)
    labels[split.clip_ids] = split.labels
    present = np.bincount(split.clip_ids, minlength=n_clips) > 0
    return clip_means(probabilities, split.clip_ids, n_clips)[present], labels[present]


def has_clips(split: Split) -> bool:
    """Whether some clip has several rows, so per-clip figures differ from per-row ones."""
    return len(np.unique(split.clip_ids)) < len(split)


def report_probabilities(probabilities: np.ndarray, split: Split, classes: list[str],
                         row_unit: str = "second") -> dict[str, Any]:
    """Reports per row (``per_second`` for melgram layouts) and per clip where clips exist,
    from the probabilities predicted for ``split``'s rows."""
    report = {f"per_{row_unit}": classification_report(split.labels, probabilities.argmax(1),
                                                      classes)}
    if has_clips(split):
        clip_probabilities, clip_labels = clip_level(probabilities, split)
        report["per_clip"] = classification_report(clip_labels, clip_probabilities.argmax(1),
                                                   classes)
    return report


def _macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    return classification_report(truth, predicted, [str(i) for i in range(n_classes)])["macro_f1"]


class GenreRun:
    """One genre training run of ``config`` on ``dataset`` (see ``loop.TaskRun``)."""

    def __init__(self, config: GenreConfig, dataset: Dataset, device: torch.device,
                 generator: torch.Generator, backbone: Backbone | None = None,
                 embedded: dict[str, Split] | None = None) -> None:
        self.config, self.device, self.generator = config, device, generator
        self.n_classes = len(dataset.classes)
        self.model = (model_from_backbone(config, dataset, device, backbone)
                      if backbone is not None
                      else build_model(config.architecture, self.n_classes, dataset.input_shape,
                                       config.hyperparameters).to(device))
        train, valid = dataset.splits[TRAIN], dataset.splits[VALID]
        self.masks = (config.freq_mask, config.time_mask)
        self.augmentation = Augmentation.from_dict(config.augment)
        self.trainee: nn.Module = self.model
        self.valid_context = dataset.context
        self.embedded: dict[str, Split] = {}
        if config.freeze_backbone:
            self.embedded = embedded or {
                name: embed_rows(self.model, split, device, dataset.context)
                for name, split in ((TRAIN, train), (VALID, valid))}
            train, valid = self.embedded[TRAIN], self.embedded[VALID]
            self.trainee, self.masks, self.valid_context = self.model.head, (0, 0), 0
        self.epoch_rows = config.epoch_rows
        if config.overfit_batch:
            rows = torch.randperm(len(train), generator=generator)[: config.batch_size].numpy()
            train = valid = train.subset(np.sort(rows))
            self.masks, self.augmentation, self.epoch_rows = (0, 0), Augmentation(), 0
        self.train, self.valid = train, valid
        counts = np.bincount(train.labels, minlength=self.n_classes).astype(np.float64)
        weights = counts.sum() / (self.n_classes * np.maximum(counts, 1))
        self.loss_fn = nn.CrossEntropyLoss(
            weight=torch.tensor(weights, dtype=torch.float32, device=device)
            if config.class_weights and not self.epoch_rows else None,
            label_smoothing=config.label_smoothing,
        )
        self.row_weights = (balanced_row_weights(train, self.n_classes) if self.epoch_rows
                            else None)
        self.rows_per_epoch = self.epoch_rows or len(train)
        self.features = torch.from_numpy(train.features)
        self.labels = torch.from_numpy(train.labels)
        self.skips_lone_rows = _has_batchnorm(self.trainee)  # BatchNorm cannot train on one
        self.correct = 0

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.trainee.parameters()), "lr": self.config.lr}]

    def epoch_order(self) -> torch.Tensor:
        self.correct = 0
        if self.row_weights is None:
            return torch.randperm(len(self.train), generator=self.generator)
        return torch.multinomial(self.row_weights, self.epoch_rows, replacement=True,
                                 generator=self.generator)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        batch = self.augmentation(self.features[index], self.labels[index], self.generator)
        batch = mask_spectrograms(batch, *self.masks, self.generator).to(self.device)
        if len(index) == 1 and self.skips_lone_rows:
            return None
        return batch, self.labels[index].to(self.device)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The batch's cross-entropy; also counts its right answers for the train accuracy."""
        self.correct += int((outputs.argmax(1) == targets).sum())
        return self.loss_fn(outputs, targets)

    def validate(self, epoch: int, train_loss: float, lr: float, started: float) -> GenreEpoch:
        valid = self.valid
        probabilities = predict_probabilities(self.trainee, valid, self.device,
                                              self.valid_context)
        valid_loss = float(nn.functional.nll_loss(
            torch.log(torch.from_numpy(probabilities).clamp(min=1e-9)),
            torch.from_numpy(valid.labels)))
        predicted = probabilities.argmax(1)
        clip_accuracy = None
        if has_clips(valid):
            clip_probabilities, clip_labels = clip_level(probabilities, valid)
            clip_accuracy = float((clip_probabilities.argmax(1) == clip_labels).mean())
        return GenreEpoch(
            epoch=epoch, train_loss=train_loss,
            train_accuracy=self.correct / self.rows_per_epoch, valid_loss=valid_loss,
            valid_accuracy=float((predicted == valid.labels).mean()),
            valid_macro_f1=_macro_f1(valid.labels, predicted, self.n_classes),
            valid_clip_accuracy=clip_accuracy, lr=lr,
            seconds=time.perf_counter() - started)


def train_classifier(
    config: GenreConfig,
    dataset: Dataset,
    device: torch.device,
    on_epoch: Callable[[GenreEpoch], None] | None = None,
    backbone: Backbone | None = None,
    embedded: dict[str, Split] | None = None,
) -> Outcome:
    """Train ``config.architecture`` on ``dataset`` (from ``backbone``'s weights, if given);
    Ctrl-C stops and keeps the chosen epoch. With a frozen backbone, ``embedded`` may give
    the splits' embeddings already computed (by ``embed_rows``)."""
    return train(config, lambda generator: GenreRun(config, dataset, device, generator,
                                                    backbone, embedded), on_epoch)


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def summarise(evaluation: dict[str, Any], dataset: Dataset) -> dict[str, Any]:
    """The headline figures of every split, for the model card."""
    summary = {}
    for split, reports in evaluation.items():
        figures: dict[str, Any] = {"rows": len(dataset.splits[split]),
                                   "clips": len(np.unique(dataset.splits[split].clip_ids))}
        for level, report in reports.items():
            figures[f"{level}_accuracy"] = round(report["accuracy"], 4)
            figures[f"{level}_macro_f1"] = round(report["macro_f1"], 4)
        last_level = "per_clip" if "per_clip" in reports else next(iter(reports))
        figures[f"{last_level}_confusion_matrix"] = reports[last_level]["confusion_matrix"]
        summary[split] = figures
    return summary


def source_rows(split: Split) -> dict[str, np.ndarray]:
    """The rows of each source of a split that has several (else nothing)."""
    if not split.clip_sources or len(set(split.clip_sources)) < 2:
        return {}
    row_sources = np.array(split.clip_sources)[split.clip_ids]
    return {source: np.flatnonzero(row_sources == source)
            for source in sorted(set(split.clip_sources))}


def evaluate_by_source(split: Split, probabilities: np.ndarray, classes: list[str],
                       row_unit: str = "second") -> dict[str, dict[str, Any]]:
    return {source: report_probabilities(probabilities[rows], split.subset(rows), classes,
                                         row_unit)
            for source, rows in source_rows(split).items()}


def headline(reports: dict[str, Any]) -> dict[str, float]:
    return {f"{level}_{figure}": round(report[figure], 4)
            for level, report in reports.items() for figure in ("accuracy", "macro_f1")}


def genre_evaluation(outcome: Outcome, config: GenreConfig, dataset: Dataset,
                     device: torch.device) -> tuple[dict[str, Any], dict[str, Any]]:
    """Figures on every split: the card's summary (with the calibration) and every report,
    for ``metrics.json``."""
    logits = {split: outcome.logits(split, s, device, dataset.context)
              for split, s in dataset.splits.items()}
    evaluation = {split: report_probabilities(softmax(logits[split]), s, dataset.classes,
                                              dataset.row_unit)
                  for split, s in dataset.splits.items()}
    by_source = {split: evaluate_by_source(s, softmax(logits[split]), dataset.classes,
                                           dataset.row_unit)
                 for split, s in dataset.splits.items() if source_rows(s)}
    calibration = calibrate(logits[VALID], dataset.splits[VALID].labels, config.uncertain_below)
    summary = summarise(evaluation, dataset)
    for split, sources in by_source.items():
        summary[split]["sources"] = {source: headline(reports)
                                     for source, reports in sources.items()}
    summary[VALID]["calibration"] = {k: v for k, v in calibration.items() if k != "reliability"}
    metrics = {"evaluation": evaluation, "by_source": by_source, "calibration": calibration}
    return summary, metrics


def genre_card_fields(outcome: Outcome, config: GenreConfig, dataset: Dataset) -> dict[str, Any]:
    """What a genre model's card holds beyond every card's fields."""
    return {
        "architecture": config.architecture,
        "hyperparameters": {**architecture_defaults(config.architecture),
                            **config.hyperparameters},
        "training": {"rows": {split: len(s) for split, s in dataset.splits.items()},
                     "config": asdict(config), "kept_epoch": outcome.kept_epoch,
                     "stopped": outcome.stopped},
    }
