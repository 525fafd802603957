"""musicnn (Pons and Serra, 2019), layer for layer, so its published weights load: the
backbone of the bundled genre and emotion models."""

from __future__ import annotations

import torch
from torch import nn

from tagger.models.base import Classifier, as_image


def max_mean_over_time(maps: torch.Tensor) -> torch.Tensor:
    """``(B, C, T)`` to ``(B, 2C)``: max and mean of each channel, interleaved as musicnn's."""
    return torch.stack([maps.amax(dim=2), maps.mean(dim=2)], dim=2).flatten(1)


def eval_norm(norm: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """An eval-mode BatchNorm as ``x * scale + shift``."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return scale, norm.bias - norm.running_mean * scale


class FrequencyPooledConv(nn.Module):
    """musicnn's front-end block: conv over the whole image (time padded, frequency valid),
    ReLU, BatchNorm, then max over frequency: ``(B, 1, T, F)`` to ``(B, C, T)``."""

    def __init__(self, channels: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        self.before = (kernel[0] - 1) // 2
        self.after = kernel[0] - 1 - self.before
        self.conv = nn.Conv2d(1, channels, kernel)
        self.norm = nn.BatchNorm2d(channels, eps=1e-3)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        maps = self.conv(nn.functional.pad(image, (0, 0, self.before, self.after)))
        return self.norm(torch.relu(maps)).amax(dim=3)

    def pooled_frames(self, padded: torch.Tensor, start: int, count: int) -> torch.Tensor:
        """What eval-mode ``forward`` gives for frames ``start .. start + count`` of
        ``padded`` (an image with enough zero frames beyond both ends for this block's
        reach), in one pass over the conv's maps instead of four. ReLU and an eval-mode
        BatchNorm are monotonic per channel, so the max over frequency can be taken first:
        of the conv itself where the BatchNorm scale is positive, of the conv with its sign
        flipped where it is negative."""
        scale, shift = eval_norm(self.norm)
        sign = torch.where(scale < 0, -1.0, 1.0)
        window = padded[:, :, start - self.before : start + count + self.after]
        peaks = nn.functional.conv2d(window, self.conv.weight * sign[:, None, None, None],
                                     self.conv.bias * sign).amax(dim=3)
        return torch.relu(peaks * sign[:, None]) * scale[:, None] + shift[:, None]


class TemporalConv(nn.Module):
    """musicnn's mid-end layer: 1-D conv (kernel 7, 'same'), ReLU, BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, 7, padding=3)
        self.norm = nn.BatchNorm1d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.conv(x)))


class MusiCNN(Classifier):
    """musicnn (Pons and Serra, 2019), layer for layer, so its published weights load.

    Front end: timbral convs spanning 7 frames and 40% / 70% of the mel bands, and
    temporal convs spanning 128, 64 and 32 frames of each band, each max-pooled over
    frequency. Mid end: three 1-D convs over time with residual connections. Back end:
    max and mean over time of every front- and mid-end channel, BatchNorm, a dense layer
    (the embedding), then the head. TensorFlow's BatchNorm epsilon (1e-3) is kept.
    ``head_pooled``: the head also reads the BatchNormed max and mean of every channel
    (1,506 values for musicnn's sizes) beside the dense layer's output.
    """

    gradcam_module = None
    reads_runs = True
    channels_last = False  # twice as slow: its single-channel convs have very wide kernels
    # How far a frame's maps reach on either side: the 128-frame temporal convs (64) and
    # three kernel-7 mid-end layers (9).
    RECEPTIVE_FRAMES = 73
    FRONT_END_CHUNK_FRAMES = 512

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 timbral_channels: int = 204, temporal_channels: int = 51,
                 midend_channels: int = 64, embedding: int = 200,
                 dropout: float = 0.5, head_pooled: bool = False) -> None:
        super().__init__()
        bands = input_shape[1]
        self.head_pooled = head_pooled
        self.input_norm = nn.BatchNorm2d(1, eps=1e-3)
        self.frontend = nn.ModuleList(
            [FrequencyPooledConv(timbral_channels, (7, int(share * bands)))
             for share in (0.4, 0.7)]
            + [FrequencyPooledConv(temporal_channels, (frames, 1)) for frames in (128, 64, 32)])
        front = 2 * timbral_channels + 3 * temporal_channels
        self.midend = nn.ModuleList([TemporalConv(front, midend_channels),
                                     TemporalConv(midend_channels, midend_channels),
                                     TemporalConv(midend_channels, midend_channels)])
        pooled = 2 * (front + 3 * midend_channels)
        self.pool_norm = nn.BatchNorm1d(pooled, eps=1e-3)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(pooled, embedding)
        self.dense_norm = nn.BatchNorm1d(embedding, eps=1e-3)
        self.head = nn.Linear(embedding + (pooled if head_pooled else 0), n_classes)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Front- and mid-end channels over time: ``(B, T, F)`` to ``(B, C, T)``."""
        image = self.input_norm(as_image(x))
        front = (torch.cat([block(image) for block in self.frontend], dim=1) if self.training
                 else self._front_end_in_chunks(image))
        layers = [self.midend[0](front)]
        for block in self.midend[1:]:
            layers.append(block(layers[-1]) + layers[-1])
        return torch.cat([front, *layers], dim=1)

    def _front_end_in_chunks(self, image: torch.Tensor) -> torch.Tensor:
        """The front end in eval mode, a few seconds at a time so that each block's maps
        stay in the CPU's cache: 3x faster than whole runs on this project's machine."""
        frames = image.shape[2]
        halo = max(max(block.before, block.after) for block in self.frontend)
        padded = nn.functional.pad(image, (0, 0, halo, halo))
        chunks = []
        for start in range(0, frames, self.FRONT_END_CHUNK_FRAMES):
            count = min(self.FRONT_END_CHUNK_FRAMES, frames - start)
            chunks.append(torch.cat([block.pooled_frames(padded, halo + start, count)
                                     for block in self.frontend], dim=1))
        return torch.cat(chunks, dim=2)

    def embed_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """The dense layer over pooled maps ``(B, 2C)``, and those maps if ``head_pooled``."""
        normed = self.pool_norm(pooled)
        embedding = self.dropout(self.dense_norm(torch.relu(self.dense(self.dropout(normed)))))
        return torch.cat([embedding, normed], dim=1) if self.head_pooled else embedding

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_pooled(max_mean_over_time(self.feature_maps(x)))

    def run_margin(self, context: int, segment_frames: int) -> int:
        return context + -(-self.RECEPTIVE_FRAMES // segment_frames)

    def embed_run(self, run: torch.Tensor, start: int, count: int,
                  context: int) -> torch.Tensor:
        """The maps are computed once over the whole run and pooled over each segment's
        window: three times less work than separate windows at context 1, and every frame
        sees its real neighbours rather than zero padding. Windows end with the run."""
        segments, frames, bands = run.shape
        maps = self.feature_maps(run.reshape(1, segments * frames, bands))
        pooled = [max_mean_over_time(maps[:, :, max(0, s - context) * frames :
                                           min(segments, s + context + 1) * frames])
                  for s in range(start, start + count)]
        return self.embed_pooled(torch.cat(pooled))
