"""Emotion models: a genre architecture's backbone with a regression head that gives one
0-1 value per target (valence, energy, danceability) instead of logits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tagger.models.base import Classifier
from tagger.models.homegrown import GenreCNN, TimeFrequencyCNN
from tagger.models.joint import JointBackbones
from tagger.models.musicnn import MusiCNN


class RegressionHead(nn.Sequential):
    """Linear-ReLU-dropout-linear, then a sigmoid: ``(B, in_features)`` to 0-1 values
    ``(B, out_features)``. The sigmoid has no parameters, so the tensors are named
    ``0.weight`` ... ``3.bias`` as in a plain ``nn.Sequential`` of the four layers."""

    def __init__(self, in_features: int, hidden: int, out_features: int,
                 dropout: float) -> None:
        super().__init__(nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
                         nn.Dropout(dropout), nn.Linear(hidden, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(x))


class EmotionRegressor(Classifier):
    """Mixin for the emotion variant of a genre architecture: its linear head becomes a
    ``RegressionHead`` with the same in and out sizes.

    Placed before the genre class, it keeps every backbone parameter's name, so
    genre weights load into it (``tagger.training.transfer.init_from_genre``).
    """

    def use_regression_head(self, hidden: int, dropout: float) -> None:
        assert isinstance(self.head, nn.Linear)
        self.head = RegressionHead(self.head.in_features, hidden, self.head.out_features,
                                   dropout)


class EmotionCNN(EmotionRegressor, GenreCNN):
    """The genre CNN's backbone with a regression head: one 0-1 value per target."""

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 channels: tuple[int, ...] = (32, 64, 128, 128), dropout: float = 0.3,
                 head_hidden: int = 64) -> None:
        super().__init__(n_classes, input_shape, channels, dropout)
        self.use_regression_head(head_hidden, dropout)


class EmotionTimeFrequencyCNN(EmotionRegressor, TimeFrequencyCNN):
    """The time-frequency CNN's backbone with a regression head: one 0-1 value per target."""

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 frequency_channels: int = 16, frequency_pool: int = 8,
                 time_channels: int = 128, dropout: float = 0.3, head_hidden: int = 64) -> None:
        super().__init__(n_classes, input_shape, frequency_channels, frequency_pool,
                         time_channels, dropout)
        self.use_regression_head(head_hidden, dropout)


class EmotionMusiCNN(EmotionRegressor, MusiCNN):
    """musicnn's backbone with a regression head: one 0-1 value per target."""

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 timbral_channels: int = 204, temporal_channels: int = 51,
                 midend_channels: int = 64, embedding: int = 200, dropout: float = 0.5,
                 head_hidden: int = 64, head_dropout: float = 0.3) -> None:
        super().__init__(n_classes, input_shape, timbral_channels, temporal_channels,
                         midend_channels, embedding, dropout)
        self.use_regression_head(head_hidden, head_dropout)


class EmotionJointBackbones(EmotionRegressor, JointBackbones):
    """Joined backbones with a regression head: one 0-1 value per target."""

    def __init__(self, n_classes: int, members: Sequence[Classifier], head_hidden: int = 64,
                 head_dropout: float = 0.3) -> None:
        super().__init__(n_classes, members)
        self.use_regression_head(head_hidden, head_dropout)
