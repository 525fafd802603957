"""Training and evaluation of classifiers on any ``Dataset``.

One loop serves every layout and architecture: optimizers, schedulers, early
stopping, choice of the kept epoch, class-balanced loss, SpecAugment-style
masks on two-dimensional inputs, an overfit-one-batch check, and fixed seeds
with deterministic kernels so a seed reproduces every epoch's loss.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tagger.atomic import atomic_write_text
from tagger.augment import Augmentation
from tagger.calibration import calibrate, softmax
from tagger.checkpoints import ModelCard, save_checkpoint
from tagger.choices import OPTIMIZERS, SCHEDULERS, SELECTIONS
from tagger.datasets import TRAIN, VALID, Dataset, Split
from tagger.features import stream_runs
from tagger.metrics import classification_report
from tagger.models import (
    Classifier,
    architecture_defaults,
    build_model,
    count_parameters,
    prepare_for_inference,
)
from tagger.transfer import Backbone, copy_backbone


@dataclass
class TrainConfig:
    architecture: str = "genre-cnn"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD and RMSprop
    weight_decay: float = 1e-2
    scheduler: str = "onecycle"
    # Early stopping: stop after this many epochs without a better selection metric (0: never).
    patience: int = 0
    # Which epoch's weights are kept: the last, or the best by validation macro-F1 or loss.
    select: str = "last"
    label_smoothing: float = 0.1
    class_weights: bool = True
    # SpecAugment-style masks on 2-D inputs: up to this many feature bins / frames.
    freq_mask: int = 16
    time_mask: int = 3
    # Spectrogram augmentations by name (see tagger.augment), e.g. {"mix": 0.5, "tilt": 12}.
    augment: dict[str, float] = field(default_factory=dict)
    # Rows drawn per epoch, so that every genre and, within a genre, every clip weighs the
    # same (0: every row once, with class weights in the loss instead).
    epoch_rows: int = 0
    # Seconds whose top calibrated probability is below this are "uncertain".
    uncertain_below: float = 0.35
    # Train only the head, on embeddings the (transferred) backbone computes once; the
    # spectrogram masks and augmentations then do not apply.
    freeze_backbone: bool = False
    seed: int = 0
    overfit_batch: bool = False

    def __post_init__(self) -> None:
        for name, value, choices in (("optimizer", self.optimizer, OPTIMIZERS),
                                     ("scheduler", self.scheduler, SCHEDULERS),
                                     ("select", self.select, SELECTIONS)):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r} (one of {', '.join(choices)})")
        Augmentation.from_dict(self.augment)
        if self.freeze_backbone and self.augment:
            raise ValueError("augmentations need a trainable backbone (no --freeze-backbone)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float
    valid_loss: float
    valid_accuracy: float
    valid_macro_f1: float
    valid_clip_accuracy: float | None
    lr: float
    seconds: float


@dataclass
class TrainingOutcome:
    model: Classifier
    history: list[EpochRecord]
    kept_epoch: int
    stopped: str  # "completed", "early stopping" or "interrupted"
    # With a frozen backbone: the train and valid splits as embeddings, which the head alone
    # maps to the model's logits (so they need not be computed again).
    embedded: dict[str, Split] = field(default_factory=dict)

    def logits(self, name: str, split: Split, device: torch.device, context: int) -> np.ndarray:
        """Logits of ``split`` (the dataset's split ``name``): from the head alone where its
        embeddings were computed for training, else through the whole model."""
        if name in self.embedded:
            return predict_logits(self.model.head, self.embedded[name], device)
        return predict_logits(self.model, split, device, context)


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def mask_spectrograms(
    batch: torch.Tensor, freq_mask: int, time_mask: int, generator: torch.Generator
) -> torch.Tensor:
    """Set one random band of feature bins and one of frames per example to the floor."""
    if batch.dim() != 3:
        return batch
    batch = batch.clone()
    floor = batch.amin(dim=(1, 2), keepdim=True)
    n, frames, bins = batch.shape
    for size, axis_len, axis in ((freq_mask, bins, 2), (time_mask, frames, 1)):
        size = min(size, axis_len - 1)
        if size <= 0:
            continue
        widths = torch.randint(0, size + 1, (n,), generator=generator)
        starts = (torch.rand(n, generator=generator) * (axis_len - widths + 1)).long()
        positions = torch.arange(axis_len).unsqueeze(0)
        band = (positions >= starts.unsqueeze(1)) & (positions < (starts + widths).unsqueeze(1))
        band = band.unsqueeze(1) if axis == 2 else band.unsqueeze(2)
        batch = torch.where(band, floor, batch)
    return batch


def balanced_row_weights(split: Split, n_classes: int) -> torch.Tensor:
    """Sampling weights giving every class, and every clip within its class, equal weight."""
    rows_per_clip = np.bincount(split.clip_ids)[split.clip_ids]
    clip_labels = np.zeros(split.clip_ids.max() + 1, dtype=np.int64)
    clip_labels[split.clip_ids] = split.labels
    present = np.zeros(len(clip_labels), dtype=bool)
    present[split.clip_ids] = True
    clips_per_class = np.bincount(clip_labels[present], minlength=n_classes)
    return torch.from_numpy(1.0 / (rows_per_clip * clips_per_class[split.labels]))


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params, lr, decay = model.parameters(), config.lr, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=decay)
    return torch.optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=decay)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer,
                   steps_per_epoch: int) -> tuple[Any, str]:
    """The scheduler and when it steps: ``batch``, ``epoch`` or ``plateau`` (on valid loss)."""
    if config.scheduler == "onecycle":
        defaults = optimizer.defaults
        cycles_momentum = bool(defaults.get("momentum")) or "betas" in defaults
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch,
            cycle_momentum=cycles_momentum), "batch"
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs), "epoch"
    if config.scheduler == "step":
        step = max(1, config.epochs // 3)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=0.1), "epoch"
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5,
                                                          patience=3), "plateau"
    return None, "never"


# Seconds per run when a model reads runs: as many as tagging's default batch.
RUN_SECONDS = 64


def _over_batches(step: Callable[[torch.Tensor], torch.Tensor], features: np.ndarray,
                  device: torch.device, batch_size: int) -> np.ndarray:
    outputs = [step(torch.from_numpy(features[start : start + batch_size]).to(device))
               .float().cpu().numpy() for start in range(0, len(features), batch_size)]
    return np.concatenate(outputs)


def _over_clip_runs(model: Classifier, step: Callable[..., torch.Tensor], split: Split,
                    device: torch.device, context: int, batch_size: int) -> np.ndarray:
    """``step`` (``model.forward_run`` or ``model.embed_run``) over each clip's rows taken as
    its consecutive seconds (the middle segment of each row), in runs of ``batch_size``
    seconds with their neighbours, as tagging streams a song."""
    frames = split.features.shape[1] // (2 * context + 1)
    middles = split.features[:, context * frames : (context + 1) * frames]
    margin = model.run_margin(context, frames)
    result: np.ndarray | None = None
    for clip in np.unique(split.clip_ids):
        rows = np.flatnonzero(split.clip_ids == clip)
        seconds = torch.from_numpy(middles[rows]).to(device)
        values = torch.cat([step(run, start, count, context) for run, start, count
                            in stream_runs(seconds.split(batch_size), margin)])
        if result is None:
            result = np.empty((len(split), values.shape[1]), dtype=np.float32)
        result[rows] = values.float().cpu().numpy()
    assert result is not None, "an empty split"
    return result


def _reads_runs(model: nn.Module) -> bool:
    return isinstance(model, Classifier) and model.reads_runs


def predict_logits(model: nn.Module, split: Split, device: torch.device, context: int = 0,
                   batch_size: int = 256) -> np.ndarray:
    """Logits of every row of ``split`` (whose rows hold ``context`` neighbouring seconds on
    either side) as tagging computes them, from a copy of ``model`` with BatchNorm folded
    (about 2x faster). A model that reads runs gets each clip's rows as its seconds."""
    model = prepare_for_inference(copy.deepcopy(model))
    with torch.inference_mode():
        if _reads_runs(model):
            return _over_clip_runs(model, model.forward_run, split, device, context,
                                   RUN_SECONDS)
        return _over_batches(model, split.features, device, batch_size)


def row_embeddings(model: Classifier, split: Split, device: torch.device, context: int = 0,
                   batch_size: int = 256) -> np.ndarray:
    """The embedding of every row of ``split``, computed as ``predict_logits`` does."""
    model.eval()
    with torch.inference_mode():
        if _reads_runs(model):
            return _over_clip_runs(model, model.embed_run, split, device, context,
                                   RUN_SECONDS)
        return _over_batches(model.embed, split.features, device, batch_size)


def embed_rows(model: Classifier, split: Split, device: torch.device, context: int = 0) -> Split:
    """``split`` with its rows' embeddings as features, for training a head alone."""
    return replace(split, features=row_embeddings(model, split, device, context))


def model_from_backbone(config: TrainConfig, dataset: Dataset, device: torch.device,
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
    sums = np.zeros((n_clips, probabilities.shape[1]))
    np.add.at(sums, split.clip_ids, probabilities)
    counts = np.bincount(split.clip_ids, minlength=n_clips)
    labels = np.zeros(n_clips, dtype=np.int64)
    labels[split.clip_ids] = split.labels
    present = counts > 0
    return sums[present] / counts[present, None], labels[present]


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


def train_classifier(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    backbone: Backbone | None = None,
    embedded: dict[str, Split] | None = None,
) -> TrainingOutcome:
    """Train ``config.architecture`` on ``dataset`` (from ``backbone``'s weights, if given);
    Ctrl-C stops and keeps the chosen epoch. With a frozen backbone, ``embedded`` may give
    the splits' embeddings already computed (by ``embed_rows``)."""
    generator = seed_everything(config.seed)
    classes = dataset.classes
    model = (model_from_backbone(config, dataset, device, backbone) if backbone is not None
             else build_model(config.architecture, len(classes), dataset.input_shape,
                              config.hyperparameters).to(device))
    train, valid = dataset.splits[TRAIN], dataset.splits[VALID]
    masks = (config.freq_mask, config.time_mask)
    augmentation = Augmentation.from_dict(config.augment)
    trainee: nn.Module = model
    valid_context = dataset.context
    if config.freeze_backbone:
        embedded = embedded or {name: embed_rows(model, split, device, dataset.context)
                                for name, split in ((TRAIN, train), (VALID, valid))}
        train, valid = embedded[TRAIN], embedded[VALID]
        trainee, masks, valid_context = model.head, (0, 0), 0
    epoch_rows = config.epoch_rows
    if config.overfit_batch:
        rows = torch.randperm(len(train), generator=generator)[: config.batch_size].numpy()
        train = valid = train.subset(np.sort(rows))
        masks, augmentation, epoch_rows = (0, 0), Augmentation(), 0
    counts = np.bincount(train.labels, minlength=len(classes)).astype(np.float64)
    weights = counts.sum() / (len(classes) * np.maximum(counts, 1))
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32, device=device)
        if config.class_weights and not epoch_rows else None,
        label_smoothing=config.label_smoothing,
    )
    row_weights = balanced_row_weights(train, len(classes)) if epoch_rows else None
    optimizer = make_optimizer(config, trainee)
    steps_per_epoch = -(-(epoch_rows or len(train)) // config.batch_size)
    scheduler, step_when = make_scheduler(config, optimizer, steps_per_epoch)
    features = torch.from_numpy(train.features)
    labels = torch.from_numpy(train.labels)
    history: list[EpochRecord] = []
    best_score, best_state, kept_epoch, waited, stopped = -np.inf, None, 0, 0, "completed"
    try:
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            trainee.train()
            if row_weights is None:
                order = torch.randperm(len(train), generator=generator)
            else:
                order = torch.multinomial(row_weights, epoch_rows, replacement=True,
                                          generator=generator)
            total_loss, correct = 0.0, 0
            for start in range(0, len(order), config.batch_size):
                index = order[start : start + config.batch_size]
                batch = augmentation(features[index], labels[index], generator)
                batch = mask_spectrograms(batch, *masks, generator).to(device)
                target = labels[index].to(device)
                if len(index) == 1 and _has_batchnorm(trainee):
                    continue  # BatchNorm cannot train on a batch of one
                logits = trainee(batch)
                loss = loss_fn(logits, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if step_when == "batch":
                    scheduler.step()
                total_loss += loss.item() * len(index)
                correct += int((logits.argmax(1) == target).sum())
            probabilities = predict_probabilities(trainee, valid, device, valid_context)
            valid_loss = float(nn.functional.nll_loss(
                torch.log(torch.from_numpy(probabilities).clamp(min=1e-9)),
                torch.from_numpy(valid.labels)))
            predicted = probabilities.argmax(1)
            clip_accuracy = None
            if has_clips(valid):
                clip_probabilities, clip_labels = clip_level(probabilities, valid)
                clip_accuracy = float((clip_probabilities.argmax(1) == clip_labels).mean())
            record = EpochRecord(
                epoch=epoch,
                train_loss=total_loss / len(order),
                train_accuracy=correct / len(order),
                valid_loss=valid_loss,
                valid_accuracy=float((predicted == valid.labels).mean()),
                valid_macro_f1=_macro_f1(valid.labels, predicted, len(classes)),
                valid_clip_accuracy=clip_accuracy,
                lr=float(optimizer.param_groups[0]["lr"]),
                seconds=time.perf_counter() - started,
            )
            history.append(record)
            if step_when == "epoch":
                scheduler.step()
            elif step_when == "plateau":
                scheduler.step(valid_loss)
            score = {"f1": record.valid_macro_f1, "loss": -valid_loss}.get(config.select, epoch)
            if score > best_score:
                best_score, kept_epoch, waited = score, epoch, 0
                if config.select != "last":
                    best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
            if on_epoch:
                on_epoch(record)
            if config.patience and waited >= config.patience:
                stopped = "early stopping"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    if not history:
        raise KeyboardInterrupt
    if config.select == "last":
        kept_epoch = len(history)
    elif best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainingOutcome(model, history, kept_epoch, stopped, embedded or {})


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


def write_run(out_dir: Path, outcome: TrainingOutcome, config: TrainConfig, dataset: Dataset,
              device: torch.device, provenance: dict[str, Any],
              name: str) -> tuple[ModelCard, dict[str, Any]]:
    """Evaluate on every split; write the checkpoint, its card and metrics.json."""
    model = outcome.model
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
    card = ModelCard(
        name=name,
        task="genre",
        classes=dataset.classes,
        architecture=config.architecture,
        hyperparameters={**architecture_defaults(config.architecture),
                         **config.hyperparameters},
        front_end=dataset.front_end,
        input_shape=dataset.input_shape,
        training={
            **provenance,
            "layout": dataset.layout,
            **dataset.notes,
            "rows": {split: len(s) for split, s in dataset.splits.items()},
            "config": asdict(config),
            "parameters": count_parameters(model),
            "epochs_run": len(outcome.history),
            "kept_epoch": outcome.kept_epoch,
            "stopped": outcome.stopped,
            "seconds_per_epoch": round(float(np.mean([h.seconds for h in outcome.history])), 2),
        },
        evaluation=summary,
        calibration={"temperature": calibration["temperature"],
                     "uncertain_below": config.uncertain_below},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, card, out_dir / "model.safetensors")
    metrics = {"evaluation": evaluation, "by_source": by_source, "calibration": calibration,
               "history": [asdict(h) for h in outcome.history],
               "kept_epoch": outcome.kept_epoch, "stopped": outcome.stopped}
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return card, evaluation
