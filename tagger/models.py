"""Model architectures, built by name from the hyper-parameters a checkpoint carries.

Every model maps a batch ``(B, *input_shape)`` to logits ``(B, n_classes)``
in two steps: ``embed`` (input to the penultimate-layer embedding) and
``head`` (the last linear layer), so embeddings can be plotted and heads
replaced. Convolutional models give the dotted name of their last
convolutional stage in ``gradcam_module`` for Grad-CAM. Two-dimensional
inputs are ``(time, feature)`` (e.g. 21 frames x 128 mel bands); the MFCC
model takes a flat vector. The emotion variants (task ``emotion``) give
sigmoid outputs, one 0-1 value per target, instead of logits.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from tagger.features import with_context

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "none": nn.Identity,
    "relu": nn.ReLU,
    "leaky-relu": lambda: nn.LeakyReLU(0.3),
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})") \
            from None


def _flat_size(body: nn.Module, input_shape: tuple[int, ...]) -> int:
    with torch.no_grad():
        return int(body(torch.zeros(1, *input_shape)).numel())


def _as_image(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, F)`` to ``(B, 1, T, F)``; inputs with a trailing channel of 1 are accepted."""
    if x.dim() == 4 and x.shape[-1] == 1:
        x = x.squeeze(-1)
    return x.unsqueeze(1)


class Classifier(nn.Module):
    """``head(embed(x))``; subclasses set ``body`` (or override ``embed``) and ``head``."""

    body: nn.Module
    head: nn.Module
    gradcam_module: str | None = None
    # Whether ``embed_run`` shares work between neighbouring segments (and so differs, at
    # the edges of its windows, from embedding each row on its own).
    reads_runs = False
    # Whether the channels-last layout speeds up inference (``prepare_for_inference``).
    channels_last = True

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    def run_margin(self, context: int, segment_frames: int) -> int:
        """How many neighbouring segments on either side ``embed_run`` reads."""
        return context

    def embed_run(self, run: torch.Tensor, start: int, count: int,
                  context: int) -> torch.Tensor:
        """Embeddings of the consecutive segments ``run[start : start + count]`` (run:
        ``(S, frames, mels)``), each seen with ``context`` neighbours on either side; the
        run's first and last segments stand in beyond its ends."""
        return self.embed(with_context(run, context)[start : start + count])

    def forward_run(self, run: torch.Tensor, start: int, count: int,
                    context: int) -> torch.Tensor:
        """The outputs of ``embed_run``'s segments: how audio is tagged and evaluated."""
        return self.head(self.embed_run(run, start, count, context))


class ImageInput(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _as_image(x)


class GlobalPool(nn.Module):
    """Average and max over the last two axes, concatenated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class GenreCNN(Classifier):
    """The bundled model: conv-BatchNorm-ReLU-pool blocks, global average + max pooling.

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
        return self.dropout(self.pool(self.features(self.input_norm(_as_image(x)))))


class MfccFFN(Classifier):
    """The course's 26-128-32-4 feed-forward net; by default with no activations at all."""

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 hidden: tuple[int, ...] = (128, 32), activation: str = "none",
                 dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        size = int(torch.tensor(input_shape).prod())
        for width in hidden:
            layers += [nn.Linear(size, width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            size = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, n_classes)


class UoaCNN(Classifier):
    """The University of Athens course CNN: 4 conv layers (kernel 5), then FC to 256-32-out.

    ``pooling`` adds max-pool 2 and padding 2 after each conv (flattening to
    1024 values on 21 x 128 melgrams), ``activation`` follows each conv and
    hidden linear layer, ``batchnorm`` comes before each conv activation. The
    defaults are the course's final variant; ``pooling=False, activation="none",
    batchnorm=False, dropout=0`` is its first.
    """

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 channels: tuple[int, ...] = (16, 32, 64, 128), pooling: bool = True,
                 activation: str = "relu", batchnorm: bool = True,
                 dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [ImageInput()]
        in_channels = 1
        for out_channels in channels:
            layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=5,
                                    padding=2 if pooling else 0))
            if batchnorm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(ACTIVATIONS[activation]())
            if pooling:
                layers.append(nn.MaxPool2d(2))
            in_channels = out_channels
        self.gradcam_module = f"convolutions.{len(layers) - 1}"
        self.convolutions = nn.Sequential(*layers, nn.Flatten())
        self.dense = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(_flat_size(self.convolutions, input_shape), 256),
            ACTIVATIONS[activation](),
            nn.Dropout(dropout), nn.Linear(256, 32), ACTIVATIONS[activation](),
        )
        self.head = nn.Linear(32, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.convolutions(x))


class LseCNN(Classifier):
    """The LSE course CNN: conv 4, 8, 16 @ 5x5 'same' + max-pool 2, dense 50 ReLU, softmax."""

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 channels: tuple[int, ...] = (4, 8, 16), dense: int = 50) -> None:
        super().__init__()
        layers: list[nn.Module] = [ImageInput()]
        in_channels = 1
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, 5, padding="same"), nn.ReLU(),
                       nn.MaxPool2d(2)]
            in_channels = out_channels
        self.gradcam_module = f"convolutions.{len(layers) - 1}"
        self.convolutions = nn.Sequential(*layers, nn.Flatten())
        self.dense = nn.Sequential(
            nn.Linear(_flat_size(self.convolutions, input_shape), dense), nn.ReLU())
        self.head = nn.Linear(dense, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.convolutions(x))


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
        scale = self.norm.weight / torch.sqrt(self.norm.running_var + self.norm.eps)
        shift = self.norm.bias - self.norm.running_mean * scale
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
        image = self.input_norm(_as_image(x))
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
        return self.embed_pooled(_max_mean_over_time(self.feature_maps(x)))

    def run_margin(self, context: int, segment_frames: int) -> int:
        return context + -(-self.RECEPTIVE_FRAMES // segment_frames)

    def embed_run(self, run: torch.Tensor, start: int, count: int,
                  context: int) -> torch.Tensor:
        """The maps are computed once over the whole run and pooled over each segment's
        window: three times less work than separate windows at context 1, and every frame
        sees its real neighbours rather than zero padding. Windows end with the run."""
        segments, frames, bands = run.shape
        maps = self.feature_maps(run.reshape(1, segments * frames, bands))
        pooled = [_max_mean_over_time(maps[:, :, max(0, s - context) * frames :
                                           min(segments, s + context + 1) * frames])
                  for s in range(start, start + count)]
        return self.embed_pooled(torch.cat(pooled))


class JointBackbones(Classifier):
    """Several backbones side by side on the same input and one head on their embeddings,
    joined: what ``retrain --init-weights A --init-weights B`` trains. ``members`` gives each
    backbone's architecture and settings (``{"architecture": ..., "hyperparameters": ...}``);
    their own heads are dropped. ``head_pooled`` is passed on to the members that take it
    (musicnn); ``head_dropout`` drops out the joined embeddings in training."""

    gradcam_module = None

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 members: tuple[dict[str, Any], ...] = (), head_pooled: bool = False,
                 head_dropout: float = 0.0) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("joint takes two or more members")
        built = []
        for member in members:
            settings = dict(member.get("hyperparameters", {}))
            if head_pooled and "head_pooled" in architecture_defaults(member["architecture"]):
                settings["head_pooled"] = True
            built.append(build_model(member["architecture"], 1, input_shape, settings))
        if head_pooled and not any(getattr(member, "head_pooled", False) for member in built):
            raise ValueError("head_pooled needs a member that takes it (musicnn)")
        if not all(isinstance(member.head, nn.Linear) for member in built):
            raise ValueError("joint members must end in a linear head")
        width = sum(member.head.in_features for member in built)
        for member in built:
            member.head = nn.Identity()
        self.members = nn.ModuleList(built)
        self.reads_runs = any(member.reads_runs for member in built)
        self.channels_last = all(member.channels_last for member in built)
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


def _max_mean_over_time(maps: torch.Tensor) -> torch.Tensor:
    """``(B, C, T)`` to ``(B, 2C)``: max and mean of each channel, interleaved as musicnn's."""
    return torch.stack([maps.amax(dim=2), maps.mean(dim=2)], dim=2).flatten(1)


def _same_padding(kernel: int) -> nn.ZeroPad2d:
    """Keras' 'same' padding for an even kernel: the extra row and column go last."""
    before = (kernel - 1) // 2
    after = kernel - 1 - before
    return nn.ZeroPad2d((before, after, before, after))


class ParallelCNN(Classifier):
    """The LSE parallel CNN: conv 3@8x8 + pool 4 beside conv 4@4x4 + pool 2, concatenated."""

    gradcam_module = "narrow"

    def __init__(self, n_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.wide = nn.Sequential(_same_padding(8), nn.Conv2d(1, 3, 8), nn.LeakyReLU(0.3),
                                  nn.MaxPool2d(4))
        self.narrow = nn.Sequential(_same_padding(4), nn.Conv2d(1, 4, 4), nn.LeakyReLU(0.3),
                                    nn.MaxPool2d(2))
        with torch.no_grad():
            size = self.embed(torch.zeros(1, *input_shape)).shape[1]
        self.head = nn.Linear(size, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        image = _as_image(x)
        return torch.cat([self.wide(image).flatten(1), self.narrow(image).flatten(1)], dim=1)


class CnnRnn(Classifier):
    """The LSE CNN-RNN: conv 8@4x4, pool 2, conv 6@3x3, pool 2, LSTM 128, LSTM 32, dense 200."""

    gradcam_module = "convolutions"

    def __init__(self, n_classes: int, input_shape: tuple[int, ...], dense: int = 200,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.convolutions = nn.Sequential(nn.Conv2d(1, 8, 4), nn.ReLU(), nn.MaxPool2d(2),
                                          nn.Conv2d(8, 6, 3), nn.ReLU(), nn.MaxPool2d(2))
        with torch.no_grad():
            _, channels, _, bands = self.convolutions(_as_image(torch.zeros(1, *input_shape))).shape
        self.sequence = nn.LSTM(channels * bands, 128, batch_first=True)
        self.summary = nn.LSTM(128, 32, batch_first=True)
        self.dense = nn.Sequential(nn.Linear(32, dense), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(dense, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.convolutions(_as_image(x))  # (B, C, T, F)
        b, c, t, f = maps.shape
        sequence, _ = self.sequence(maps.permute(0, 2, 1, 3).reshape(b, t, c * f))
        _, (last, _) = self.summary(sequence)
        return self.dense(last[-1])


class RecurrentClassifier(Classifier):
    """The NTUA LSTM: (bi)directional, 2 layers of 64 units, dropout 0.4, over time frames."""

    def __init__(self, n_classes: int, input_shape: tuple[int, ...], hidden: int = 64,
                 layers: int = 2, bidirectional: bool = True, dropout: float = 0.4) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_shape[-1], hidden, num_layers=layers, batch_first=True,
                            bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        _, (state, _) = self.lstm(x.squeeze(-1) if x.dim() == 4 else x)
        if self.lstm.bidirectional:
            return torch.cat([state[-2], state[-1]], dim=1)
        return state[-1]


class Cnn2d(Classifier):
    """The NTUA 2-D CNN: blocks of conv 3x3 - BatchNorm - ReLU - max-pool 2, then linear."""

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 channels: tuple[int, ...] = (16, 32, 64, 128), dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = [ImageInput()]
        in_channels, size = 1, list(input_shape[:2])
        for out_channels in channels:
            pool = tuple(2 if s >= 2 else 1 for s in size)
            size = [s // p for s, p in zip(size, pool, strict=True)]
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1),
                       nn.BatchNorm2d(out_channels), nn.ReLU(), nn.MaxPool2d(pool)]
            in_channels = out_channels
        self.gradcam_module = f"body.{len(layers) - 1}"
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Dropout(dropout))
        self.head = nn.Linear(_flat_size(self.body, input_shape), n_classes)


class EmotionRegressor(Classifier):
    """Mixin for the emotion variant of a genre architecture: a regression head, 0-1 outputs.

    Placed before the genre class, it keeps every backbone parameter's name, so
    genre weights load into it (``tagger.emotion.model.init_from_genre``); the
    genre model's last linear layer becomes linear-ReLU-dropout-linear, and a
    sigmoid gives one 0-1 value per target.
    """

    def use_regression_head(self, hidden: int, dropout: float) -> None:
        """Replace the linear head by linear-ReLU-dropout-linear with the same in and out sizes."""
        assert isinstance(self.head, nn.Linear)
        self.head = nn.Sequential(
            nn.Linear(self.head.in_features, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, self.head.out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(x))

    def forward_run(self, run: torch.Tensor, start: int, count: int,
                    context: int) -> torch.Tensor:
        return torch.sigmoid(super().forward_run(run, start, count, context))


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

    def __init__(self, n_classes: int, input_shape: tuple[int, ...],
                 members: tuple[dict[str, Any], ...] = (), head_hidden: int = 64,
                 head_dropout: float = 0.3) -> None:
        super().__init__(n_classes, input_shape, members)
        self.use_regression_head(head_hidden, head_dropout)


@dataclass(frozen=True)
class Architecture:
    factory: Callable[..., Classifier]
    summary: str
    task: str = "genre"


ARCHITECTURES: dict[str, Architecture] = {
    "genre-cnn": Architecture(GenreCNN, "bundled model: 4 conv-BN-ReLU-pool blocks, global pool"),
    "mfcc-ffn": Architecture(MfccFFN, "course A: 26-128-32-out feed-forward, no activations"),
    "uoa-cnn": Architecture(UoaCNN, "course A: 4 conv k5 16-32-64-128, FC 1024-256-32-out"),
    "lse-cnn": Architecture(LseCNN, "course B: conv 4/8/16 @5x5 + pool, dense 50"),
    "tf-cnn": Architecture(TimeFrequencyCNN, "ours: frequency convs, then 1-D convs over time"),
    "musicnn": Architecture(MusiCNN, "musicnn: timbral and temporal convs, residual 1-D "
                                     "convs, max+mean pool, dense 200"),
    "joint": Architecture(JointBackbones, "backbones side by side, one head on their joined "
                                         "embeddings (retrain --init-weights A --init-weights B)"),
    "parallel-cnn": Architecture(ParallelCNN, "course B: parallel conv 8x8/pool 4 and 4x4/pool 2"),
    "cnn-rnn": Architecture(CnnRnn, "course B: 2 convs, LSTM 128, LSTM 32, dense 200"),
    "lstm": Architecture(RecurrentClassifier, "course D: (bi)LSTM 2x64 over frames"),
    "cnn2d": Architecture(Cnn2d, "course D: 4 conv-BN-ReLU-pool blocks, linear"),
    "emotion-cnn": Architecture(EmotionCNN, "emotion: genre-cnn backbone, sigmoid regression "
                                            "head (retrain --task emotion)", task="emotion"),
    "emotion-tf-cnn": Architecture(EmotionTimeFrequencyCNN, "emotion: tf-cnn backbone, sigmoid "
                                   "regression head (retrain --task emotion)", task="emotion"),
    "emotion-musicnn": Architecture(EmotionMusiCNN, "emotion: musicnn backbone, sigmoid "
                                                     "regression head", task="emotion"),
    "emotion-joint": Architecture(EmotionJointBackbones, "emotion: joined backbones, sigmoid "
                                                         "regression head", task="emotion"),
}


def architecture_defaults(architecture: str) -> dict[str, Any]:
    """The hyper-parameters ``architecture`` takes, with their default values."""
    signature = inspect.signature(ARCHITECTURES[architecture].factory)
    return {
        name: list(p.default) if isinstance(p.default, tuple) else p.default
        for name, p in signature.parameters.items()
        if name not in ("n_classes", "input_shape")
    }


def build_model(
    architecture: str,
    n_classes: int,
    input_shape: tuple[int, ...],
    hyperparameters: dict[str, Any],
) -> Classifier:
    """Instantiate ``architecture`` for inputs of ``input_shape`` (without the batch axis)."""
    if architecture not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {architecture!r} (known: {known})")
    params = {**architecture_defaults(architecture), **hyperparameters}
    unknown = set(params) - set(architecture_defaults(architecture))
    if unknown:
        raise ValueError(f"{architecture} takes no {', '.join(sorted(unknown))}")
    for name, value in params.items():
        if isinstance(value, list):
            params[name] = tuple(value)
    if "activation" in params:
        activation(params["activation"])  # fail early on an unknown name
    return ARCHITECTURES[architecture].factory(n_classes=n_classes,
                                               input_shape=tuple(input_shape), **params)


def prepare_for_inference(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution into it and switch to the
    channels-last layout where that helps: about 3x faster on the CPU, same outputs (to
    1e-5). Eval only."""
    model.eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            convolution, norm = module[i], module[i + 1]
            if (isinstance(convolution, nn.Conv1d | nn.Conv2d)
                    and isinstance(norm, nn.BatchNorm1d | nn.BatchNorm2d)):
                module[i] = fuse_conv_bn_eval(convolution, norm)
                module[i + 1] = nn.Identity()
    if getattr(model, "channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
