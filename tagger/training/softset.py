"""Linear genre heads on cached per-second embeddings, trained as ``retrain
--freeze-backbone`` trains the bundled head: AdamW (lr 1e-3, weight decay 1e-2), one-cycle
(30 % warm-up), 30 epochs of 8,000 seconds drawn with replacement, batch 64, last epoch kept.

Many heads (folds, inner folds, held-out genres) train at once as one stack, each with its
own parameters, draw of seconds and loss; AdamW and the schedule act elementwise, so each
head trains exactly as it would alone.

- ``softmax`` (today's recipe): cross-entropy over one label a clip, label smoothing 0.1.
- ``softset``: one softmax over every genre; a clip's labels (each of its genres, and
  Pop/Rock as the set pop/rock/metal) share the target mass: -sum_l (1/L) log sum_{c in l}
  p_c, label smoothing 0.1 over the genres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tagger.datasets.splits import clip_means
from tagger.results import softmax


@dataclass(frozen=True)
class HeadConfig:
    loss: str  # "softmax" or "softset"
    balance_power: float = 1.0  # a label's clips weigh count ** -power: 1 every label the same
    epochs: int = 30
    epoch_rows: int = 8000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1


@dataclass(frozen=True)
class HeadSpec:
    """One head of a stack: the clips it trains on, and the class it holds out, if any."""

    clips: np.ndarray  # bool per clip
    drop_class: int | None = None


class StackedHeads(nn.Module):
    """M linear heads side by side: input (M, B, D) to logits (M, B, C); a held-out class's
    logit is masked."""

    def __init__(self, m: int, width: int, n_classes: int, class_mask: torch.Tensor) -> None:
        super().__init__()
        bound = 1 / math.sqrt(width)  # nn.Linear's initialisation
        self.w = nn.Parameter(torch.empty(m, width, n_classes).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.empty(m, 1, n_classes).uniform_(-bound, bound))
        self.register_buffer("class_mask", class_mask)  # (M, C): 1 kept, 0 held out

    def forward(self, x: torch.Tensor, models: slice | None = None) -> torch.Tensor:
        sl = models or slice(None)
        logits = torch.baddbmm(self.b[sl], x, self.w[sl])
        return logits.masked_fill(self.class_mask[sl, None] == 0, -1e9)


def balanced_row_weights(row_clip: np.ndarray, clip_labels: list[list[int]],
                         power: float) -> np.ndarray:
    """Each row's sampling weight: a label's clips weigh ``count ** -power`` (a clip's labels
    averaged), every clip within a label the same, every second within a clip the same."""
    counts = np.bincount([label for labels in clip_labels for label in labels]) \
        if any(clip_labels) else np.zeros(0)
    clip_weight = np.array([np.mean(counts[labels] ** -power) if labels else 0.0
                            for labels in clip_labels])
    seconds = np.bincount(row_clip, minlength=len(clip_labels))
    return clip_weight[row_clip] / np.maximum(seconds[row_clip], 1)


def softset_loss(logits: torch.Tensor, targets: torch.Tensor, partial: torch.Tensor,
                 partial_columns: list[int], smoothing: float) -> torch.Tensor:
    """Per row: labels (targets == 1, and the ``partial`` set) share the mass; (..., C)."""
    logp = torch.log_softmax(logits, dim=-1)
    kept = logits > -1e8
    labels = (targets == 1).sum(-1) + partial
    nll = -((targets == 1) * logp).sum(-1) - partial * torch.logsumexp(
        logp[..., partial_columns], dim=-1)
    nll = nll / labels.clamp(min=1)
    smooth = -(logp * kept).sum(-1) / kept.sum(-1)
    return (1 - smoothing) * nll + smoothing * smooth


def softmax_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Per row: today's cross-entropy with label smoothing over the kept classes."""
    logp = torch.log_softmax(logits, dim=-1)
    kept = logits > -1e8
    nll = -logp.gather(-1, labels[..., None])[..., 0]
    smooth = -(logp * kept).sum(-1) / kept.sum(-1)
    return (1 - smoothing) * nll + smoothing * smooth


def train_stack(x: np.ndarray, row_clip: np.ndarray, targets: np.ndarray, partial: np.ndarray,
                partial_columns: list[int], specs: list[HeadSpec], config: HeadConfig,
                seed: int) -> StackedHeads:
    """Heads for ``specs`` on rows ``x`` of clips ``row_clip``. softmax: ``targets`` is one
    class index per clip (-1: none); softset: (clips, classes) of 1/0/-1 with the ``partial``
    (Pop/Rock) clips."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    one_label = config.loss == "softmax"
    n_clips = len(targets)
    n_classes = int(targets.max()) + 1 if one_label else targets.shape[1]
    m = len(specs)
    weights = np.zeros((m, len(x)))
    class_mask = np.ones((m, n_classes), dtype=np.float32)
    for i, spec in enumerate(specs):
        clips = spec.clips.copy()
        g = spec.drop_class
        if one_label:
            clips &= (targets >= 0) & (targets != (-2 if g is None else g))
            labels = [[int(t)] if ok else [] for t, ok in zip(targets, clips, strict=True)]
        else:
            if g is not None:
                clips &= targets[:, g] != 1
                if g in partial_columns:
                    clips &= ~partial
            labels = [[*np.flatnonzero(targets[j] == 1).tolist(),
                       *([n_classes] if partial[j] else [])] if clips[j] else []
                      for j in range(n_clips)]
        if g is not None:
            class_mask[i, g] = 0
        weights[i] = balanced_row_weights(row_clip, labels, config.balance_power)
    heads = StackedHeads(m, x.shape[1], n_classes, torch.from_numpy(class_mask))
    xt, clip_of_row = torch.from_numpy(x), torch.from_numpy(row_clip)
    w = torch.from_numpy(weights)
    if one_label:
        y = torch.from_numpy(np.maximum(targets, 0).astype(np.int64))
    else:
        y = torch.from_numpy(targets.astype(np.float32))
        p = torch.from_numpy(partial.astype(np.float32))
    optimizer = torch.optim.AdamW(heads.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    steps = -(-config.epoch_rows // config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                    total_steps=config.epochs * steps,
                                                    pct_start=0.3)
    heads.train()
    for _ in range(config.epochs):
        order = torch.multinomial(w, config.epoch_rows, replacement=True, generator=generator)
        for first in range(0, config.epoch_rows, config.batch_size):
            index = order[:, first : first + config.batch_size]  # (M, B)
            clips = clip_of_row[index]
            logits = heads(xt[index])
            if one_label:
                loss = softmax_loss(logits, y[clips], config.label_smoothing)
            else:
                loss = softset_loss(logits, y[clips], p[clips], partial_columns,
                                    config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.mean(1).sum().backward()
            optimizer.step()
            scheduler.step()
    return heads.eval()


def song_probabilities(heads: StackedHeads, i: int, x: np.ndarray, row_clip: np.ndarray,
                       n_clips: int, temperature: float = 1.0) -> np.ndarray:
    """(n_clips, classes): head ``i``'s mean per-second softmax probabilities of the clips
    whose rows ``x`` are (``row_clip``: each row's clip, 0..n_clips-1)."""
    return clip_probabilities(head_logits(heads, i, x) / temperature, row_clip, n_clips)


def head_logits(heads: StackedHeads, i: int, x: np.ndarray) -> np.ndarray:
    """Head ``i``'s logits of the rows ``x``."""
    with torch.inference_mode():
        return heads(torch.from_numpy(x)[None], slice(i, i + 1))[0].numpy()


def clip_familiarity(logits: np.ndarray, row_clip: np.ndarray, n_clips: int) -> np.ndarray:
    """(n_clips,): each clip's familiarity, the log-sum-exp of its mean logits
    (``tagger.results.familiarity``); a held-out class's masked logit adds nothing."""
    return np.logaddexp.reduce(clip_means(logits, row_clip, n_clips), axis=1)


def clip_probabilities(logits: np.ndarray, row_clip: np.ndarray, n_clips: int) -> np.ndarray:
    """(n_clips, classes): the mean per-second softmax probabilities of each clip."""
    return clip_means(softmax(logits), row_clip, n_clips)


MIN_HITS = 3  # a threshold's precision counts only with this many right songs above it


def f1_thresholds(probs: np.ndarray, targets: np.ndarray,
                  min_precision: float = 0.0) -> np.ndarray:
    """Per genre, the threshold on the song's mean probability that maximises F1 over the
    clips whose target is known (1/0), among those whose precision reaches
    ``min_precision`` (with ``MIN_HITS`` right songs); 1.0 (never given) for a genre none
    reaches, 0.5 for a genre without a positive clip."""
    out = np.full(probs.shape[1], 0.5)
    for g in range(probs.shape[1]):
        known = targets[:, g] >= 0
        p, t = probs[known, g], targets[known, g] == 1
        if not t.any():
            continue
        candidates = np.unique(np.round(p, 3))
        chosen = p[None, :] >= candidates[:, None]
        tp = (chosen & t).sum(1)
        f1 = 2 * tp / (chosen.sum(1) + t.sum())
        precise = ((tp >= min(MIN_HITS, int(t.sum()))) & (tp >= min_precision * chosen.sum(1))
                   if min_precision > 0 else np.ones(len(candidates), dtype=bool))
        out[g] = candidates[int(np.argmax(np.where(precise, f1, -1)))] if precise.any() else 1.0
    return out
