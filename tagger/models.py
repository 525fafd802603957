"""Model architectures, built by name from the hyper-parameters a checkpoint carries."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class GenreCNN(nn.Module):
    """Compact 2-D CNN over one melgram: conv-BatchNorm-ReLU-pool blocks, global pooling.

    Input ``(B, frames, mels)`` in dB; the first BatchNorm learns the input
    scale, so raw dB values go in. Time is pooled only while frames remain,
    frequency in every block; global average and max pooling make the head
    independent of the input size.
    """

    def __init__(
        self,
        n_classes: int,
        n_frames: int,
        n_mels: int,
        channels: tuple[int, ...] = (32, 64, 128, 128),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm2d(1)
        blocks: list[nn.Module] = []
        in_channels, frames = 1, n_frames
        for out_channels in channels:
            time_pool = 2 if frames >= 2 else 1
            frames //= time_pool
            blocks += [
                nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
                nn.MaxPool2d((time_pool, 2)),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * in_channels, n_classes)

    def embed(self, melgrams: torch.Tensor) -> torch.Tensor:
        """The penultimate-layer embedding, ``(B, 2 * channels[-1])``."""
        x = self.features(self.input_norm(melgrams.unsqueeze(1)))
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)

    def forward(self, melgrams: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(melgrams)))


class EmotionCNN(GenreCNN):
    """The genre CNN's backbone with a regression head: one 0-1 value per target.

    The backbone's parameters have the genre model's names, so genre weights
    load into it (``tagger.emotion.model.init_from_genre``); the head is
    linear-ReLU-dropout-linear, then a sigmoid.
    """

    def __init__(
        self,
        n_classes: int,
        n_frames: int,
        n_mels: int,
        channels: tuple[int, ...] = (32, 64, 128, 128),
        dropout: float = 0.3,
        head_hidden: int = 64,
    ) -> None:
        super().__init__(n_classes, n_frames, n_mels, channels, dropout)
        self.classifier = nn.Sequential(
            nn.Linear(2 * channels[-1], head_hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(head_hidden, n_classes),
        )

    def forward(self, melgrams: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(melgrams))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "genre-cnn": GenreCNN,
    "emotion-cnn": EmotionCNN,
}


def architecture_defaults(architecture: str) -> dict[str, Any]:
    """The hyper-parameters ``architecture`` takes, with their default values."""
    signature = inspect.signature(ARCHITECTURES[architecture])
    return {
        name: list(p.default) if isinstance(p.default, tuple) else p.default
        for name, p in signature.parameters.items()
        if name not in ("n_classes", "n_frames", "n_mels")
    }


def build_model(
    architecture: str,
    n_classes: int,
    input_shape: tuple[int, int],
    hyperparameters: dict[str, Any],
) -> nn.Module:
    """Instantiate ``architecture`` for inputs of ``input_shape = (frames, mels)``."""
    try:
        factory = ARCHITECTURES[architecture]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {architecture!r} (known: {known})") from None
    params = dict(hyperparameters)
    if "channels" in params:
        params["channels"] = tuple(params["channels"])
    return factory(n_classes=n_classes, n_frames=input_shape[0], n_mels=input_shape[1], **params)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
