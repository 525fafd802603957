"""The project's own CNNs: genre-cnn (genre-gtzan10's architecture) and tf-cnn
(genre-sources11's)."""

from __future__ import annotations

import torch
from torch import nn

from tagger.models.base import Classifier, GlobalPool, ImageInput, as_image


class GenreCNN(Classifier):
    """Conv-BatchNorm-ReLU-pool blocks, global average + max pooling: the first genre model
    (genre-gtzan10, bundled since 0.1.0).

    The first BatchNorm learns the input scale, so raw dB values go in. Time is
    pooled only while frames remain, frequency in every block.
    """

    gradcam_module = "features"

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 channels: tuple[int, ...] = (32, 64, 128, 128), dropout: float = 0.3) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm2d(1)
        blocks: list[nn.Module] = []
        in_channels, frames = 1, input_shape[0]
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
        self.pool = GlobalPool()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * in_channels, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.pool(self.features(self.input_norm(as_image(x)))))


class TimeFrequencyCNN(Classifier):
    """Ours: frequency patterns first, then time, with different kernels for each.

    A 2-D stage with wide frequency kernels (1 x 7, then 1 x 5) and
    frequency-only pooling learns timbre and pitch shapes without mixing
    frames; its output, stacked over channels and bands, is a sequence over
    time that 1-D convolutions (kernel 3) read for rhythm and onsets; average
    and max over time pool it. Works for any number of frames, including
    one-second melgrams (21 frames).
    """

    gradcam_module = "time"

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 frequency_channels: int = 16, frequency_pool: int = 8,
                 time_channels: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        bands = input_shape[1] // (frequency_pool * 2)
        self.frequency = nn.Sequential(
            ImageInput(), nn.BatchNorm2d(1),
            nn.Conv2d(1, frequency_channels, (1, 7), padding=(0, 3), bias=False),
            nn.BatchNorm2d(frequency_channels), nn.ReLU(), nn.MaxPool2d((1, frequency_pool)),
            nn.Conv2d(frequency_channels, frequency_channels, (1, 5), padding=(0, 2), bias=False),
            nn.BatchNorm2d(frequency_channels), nn.ReLU(), nn.MaxPool2d((1, 2)),
        )
        self.time = nn.Sequential(
            nn.Conv1d(frequency_channels * bands, time_channels, 3, padding=1, bias=False),
            nn.BatchNorm1d(time_channels), nn.ReLU(),
            nn.Conv1d(time_channels, time_channels, 3, padding=1, bias=False),
            nn.BatchNorm1d(time_channels), nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * time_channels, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.frequency(x)  # (B, C, T, F)
        b, c, t, f = maps.shape
        sequence = self.time(maps.permute(0, 1, 3, 2).reshape(b, c * f, t))
        return self.dropout(torch.cat([sequence.mean(dim=2), sequence.amax(dim=2)], dim=1))
