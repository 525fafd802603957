"""The course replicas: the networks of the four pieces of course work genre-tag grew out
of, layer for layer (course A: University of Athens, B: LSE, D: NTUA)."""

from __future__ import annotations

import torch
from torch import nn

from tagger.models.base import ACTIVATIONS, Classifier, ImageInput, as_image, flat_size


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
            nn.Dropout(dropout), nn.Linear(flat_size(self.convolutions, input_shape), 256),
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
            nn.Linear(flat_size(self.convolutions, input_shape), dense), nn.ReLU())
        self.head = nn.Linear(dense, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.convolutions(x))


def same_padding(kernel: int) -> nn.ZeroPad2d:
    """Keras' 'same' padding for an even kernel: the extra row and column go last."""
    before = (kernel - 1) // 2
    after = kernel - 1 - before
    return nn.ZeroPad2d((before, after, before, after))


class ParallelCNN(Classifier):
    """The LSE parallel CNN: conv 3@8x8 + pool 4 beside conv 4@4x4 + pool 2, concatenated."""

    gradcam_module = "narrow"

    def __init__(self, n_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.wide = nn.Sequential(same_padding(8), nn.Conv2d(1, 3, 8), nn.LeakyReLU(0.3),
                                  nn.MaxPool2d(4))
        self.narrow = nn.Sequential(same_padding(4), nn.Conv2d(1, 4, 4), nn.LeakyReLU(0.3),
                                    nn.MaxPool2d(2))
        with torch.no_grad():
            size = self.embed(torch.zeros(1, *input_shape)).shape[1]
        self.head = nn.Linear(size, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        image = as_image(x)
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
            _, channels, _, bands = self.convolutions(as_image(torch.zeros(1, *input_shape))).shape
        self.sequence = nn.LSTM(channels * bands, 128, batch_first=True)
        self.summary = nn.LSTM(128, 32, batch_first=True)
        self.dense = nn.Sequential(nn.Linear(32, dense), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(dense, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.convolutions(as_image(x))  # (B, C, T, F)
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
        self.head = nn.Linear(flat_size(self.body, input_shape), n_classes)
