"""Several backbones side by side on the same input, one head on their joined embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tagger.models.base import Classifier


class JointBackbones(Classifier):
    """What ``retrain --init-weights A --init-weights B`` trains: the built backbones
    ``members`` (``tagger.models.registry`` builds them from a checkpoint's settings) lose
    their own linear heads, and one new head reads their embeddings, joined.
    ``head_dropout`` drops out the joined embeddings in training."""

    gradcam_module = None

    def __init__(self, n_classes: int, members: Sequence[Classifier],
                 head_dropout: float = 0.0) -> None:
        super().__init__()
        if not all(isinstance(member.head, nn.Linear) for member in members):
            raise ValueError("joint members must end in a linear head")
        width = sum(member.head.in_features for member in members)
        for member in members:
            member.head = nn.Identity()
        self.members = nn.ModuleList(members)
        self.reads_runs = any(member.reads_runs for member in members)
        self.channels_last = all(member.channels_last for member in members)
        self.head: nn.Module = (nn.Sequential(nn.Dropout(head_dropout), nn.Linear(width, n_classes))
                                if head_dropout else nn.Linear(width, n_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([member.embed(x) for member in self.members], dim=1)

    def run_margin(self, context: int, segment_frames: int) -> int:
        return max(member.run_margin(context, segment_frames) for member in self.members)

    def embed_run(self, run: torch.Tensor, start: int, count: int,
                  context: int) -> torch.Tensor:
        return torch.cat([member.embed_run(run, start, count, context)
                          for member in self.members], dim=1)
