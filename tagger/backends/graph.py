"""The bundled models as one traceable graph: a run of melgrams in, every segment's outputs
out, with no Python loop whose length depends on the run (what ONNX and OpenVINO export)."""

from __future__ import annotations

import torch
from torch import nn

from tagger.backends.pruned import PrunedMusiCNN
from tagger.models import Classifier, JointBackbones, MusiCNN


def musicnn_members(model: nn.Module) -> list[MusiCNN] | None:
    """The musicnn backbones of ``model`` (itself, or every member of a joint), or None
    when it has any other kind: only those have an exported graph."""
    if isinstance(model, MusiCNN):
        return [model]
    if isinstance(model, JointBackbones) and all(isinstance(m, MusiCNN) for m in model.members):
        return list(model.members)
    return None


def windowed_pool(maps: torch.Tensor, frames: int, context: int) -> torch.Tensor:
    """``MusiCNN.embed_run``'s pooling for every segment of a run at once: maps
    ``(1, C, S * frames)`` to ``(S, 2C)``, each segment's max and mean over its own frames
    and ``context`` neighbours' on either side, windows ending with the run."""
    channels = maps.shape[1]
    per_segment = maps.reshape(channels, -1, frames)  # (C, S, frames)
    peaks = per_segment.amax(dim=2).unsqueeze(0)  # (1, C, S)
    sums = per_segment.sum(dim=2).unsqueeze(0)
    width = 2 * context + 1
    peaks = nn.functional.max_pool1d(peaks, width, 1, padding=context)
    ones = torch.ones_like(sums[:, :1])
    sums = nn.functional.avg_pool1d(sums, width, 1, padding=context) * width
    counts = nn.functional.avg_pool1d(ones, width, 1, padding=context) * width
    means = sums / (counts * frames)
    return torch.stack([peaks[0].T, means[0].T], dim=2).flatten(1)


class RunGraph(nn.Module):
    """A prepared musicnn or joint-of-musicnn model as ``run (S, frames, mels)`` to outputs
    ``(S, classes)``: what ``Classifier.forward_run(run, 0, S, context)`` gives, each
    backbone without its dead filters (``PrunedMusiCNN``)."""

    def __init__(self, model: Classifier, context: int) -> None:
        super().__init__()
        members = musicnn_members(model)
        if members is None:
            raise ValueError(f"{type(model).__name__} has no exported graph")
        self.head = model.head
        self.members = nn.ModuleList(PrunedMusiCNN(member) for member in members)
        self.context = context

    def forward(self, run: torch.Tensor) -> torch.Tensor:
        frames, bands = run.shape[1], run.shape[2]
        melgrams = run.reshape(1, -1, bands)
        embeddings = [member.embed_pooled(windowed_pool(member.maps(melgrams), frames,
                                                        self.context))
                      for member in self.members]
        return self.head(torch.cat(embeddings, dim=1))
