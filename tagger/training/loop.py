"""The one training loop, for both tasks.

It owns what does not depend on the task: fixed seeds with deterministic
kernels (so a seed reproduces every epoch's loss), the optimizer and its
scheduler, batches, the choice of the kept epoch, early stopping and Ctrl-C
(which stops and keeps the epochs trained so far). The task's half
(``genre.py``, ``emotion.py``) says which rows an epoch trains on, what a
batch and its loss are, and how an epoch is validated.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from tagger.datasets.splits import Split
from tagger.training.options import TrainConfig
from tagger.training.predict import predict_logits


class EpochRecord(Protocol):
    epoch: int
    valid_loss: float
    seconds: float

    def score(self, select: str) -> float:
        """How good the epoch is by the selection metric ``select`` (higher is better)."""

    def describe(self) -> str:
        """The epoch's figures in one line."""


class TaskRun(Protocol):
    """The task's half of one training run, which ``train`` drives."""

    model: nn.Module  # the whole model, whose weights are kept
    trainee: nn.Module  # what learns: the model, or its head on precomputed embeddings
    rows_per_epoch: int
    # With a frozen backbone: splits as embeddings, which the head alone maps to outputs.
    embedded: dict[str, Split]

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The trainee's parameters, with each group's learning rate."""

    def epoch_order(self) -> torch.Tensor:
        """The rows of one epoch, in the order they are trained on."""

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The inputs and targets of these rows on the device (None: skip the batch)."""

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The batch's loss (the run may also count what it reports per epoch)."""

    def validate(self, epoch: int, train_loss: float, lr: float,
                 started: float) -> EpochRecord:
        """The epoch's record, with its figures on the validation split."""


@dataclass
class Outcome:
    model: nn.Module
    history: list[Any]  # the task's epoch records
    kept_epoch: int
    stopped: str  # "completed", "early stopping" or "interrupted"
    embedded: dict[str, Split] = field(default_factory=dict)

    def logits(self, name: str, split: Split, device: torch.device, context: int) -> np.ndarray:
        """Outputs of ``split`` (the dataset's split ``name``): from the head alone where its
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


def make_optimizer(config: TrainConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    lr, decay = config.lr, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, weight_decay=decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=decay)
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr, weight_decay=decay)
    return torch.optim.RMSprop(groups, lr=lr, momentum=config.momentum, weight_decay=decay)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer,
                   steps_per_epoch: int) -> tuple[Any, str]:
    """The scheduler and when it steps: ``batch``, ``epoch`` or ``plateau`` (on valid loss)."""
    settings = config.scheduler_settings.get(config.scheduler, {})
    if config.scheduler == "onecycle":
        defaults = optimizer.defaults
        cycles_momentum = bool(defaults.get("momentum")) or "betas" in defaults
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=config.epochs * steps_per_epoch, pct_start=settings["warmup"],
            cycle_momentum=cycles_momentum), "batch"
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs), "epoch"
    if config.scheduler == "step":
        step = int(settings["every"]) or max(1, config.epochs // 3)
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step,
                                               gamma=settings["gamma"]), "epoch"
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=settings["factor"], patience=int(settings["patience"])), "plateau"
    return None, "never"


def train(
    config: TrainConfig,
    start: Callable[[torch.Generator], TaskRun],
    on_epoch: Callable[[Any], None] | None = None,
) -> Outcome:
    """Seed everything, ``start`` the task's run (it builds the model) and train it for
    ``config.epochs`` epochs, or until early stopping or Ctrl-C."""
    generator = seed_everything(config.seed)
    run = start(generator)
    model = run.model
    optimizer = make_optimizer(config, run.parameter_groups())
    steps_per_epoch = -(-run.rows_per_epoch // config.batch_size)
    scheduler, step_when = make_scheduler(config, optimizer, steps_per_epoch)
    history: list[Any] = []
    best_score, best_state, kept_epoch, waited, stopped = -np.inf, None, 0, 0, "completed"
    try:
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            run.trainee.train()
            order = run.epoch_order()
            total_loss = 0.0
            for first in range(0, len(order), config.batch_size):
                index = order[first : first + config.batch_size]
                batch = run.batch(index)
                if batch is None:
                    continue
                loss = run.loss(run.trainee(batch[0]), batch[1])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if step_when == "batch":
                    scheduler.step()
                total_loss += loss.item() * len(index)
            record = run.validate(epoch, total_loss / len(order),
                                  float(optimizer.param_groups[0]["lr"]), started)
            history.append(record)
            if step_when == "epoch":
                scheduler.step()
            elif step_when == "plateau":
                scheduler.step(record.valid_loss)
            score = record.score(config.select)
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
    return Outcome(model, history, kept_epoch, stopped, run.embedded)
