"""Predictions of a model over a split's rows, as tagging computes them: in batches, or, for
a model that reads runs of seconds (musicnn), clip by clip in runs of neighbouring
seconds. Both tasks' training and evaluation use these."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from tagger.datasets.splits import Split
from tagger.features import stream_runs
from tagger.models import Classifier, prepare_for_inference
from tagger.training.options import BATCH_SIZE

# Seconds per run when a model reads runs: a batch's worth, as tagging streams them.
RUN_SECONDS = BATCH_SIZE


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
        seconds = middles[rows]
        batches = (seconds[first : first + batch_size]
                   for first in range(0, len(seconds), batch_size))
        values = torch.cat([step(torch.from_numpy(run).to(device), start, count, context)
                            for run, start, count in stream_runs(batches, margin)])
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
