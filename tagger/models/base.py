"""What every model is: a ``Classifier`` that embeds its input and maps the embedding to
outputs with its ``head``, and the small pieces several architectures share.

Every model maps a batch ``(B, *input_shape)`` to outputs ``(B, n_classes)`` in two
steps: ``embed`` (input to the penultimate-layer embedding) and ``head`` (embedding to
outputs), so embeddings can be plotted and heads replaced. Convolutional models give
the dotted name of their last convolutional stage in ``gradcam_module`` for Grad-CAM.
Two-dimensional inputs are ``(time, feature)`` (e.g. 21 frames x 128 mel bands); the
MFCC model takes a flat vector.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

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


def with_context(melgrams: torch.Tensor, context: int) -> torch.Tensor:
    """``tagger.features.clip_with_context`` for a tensor (on any device): each melgram
    ``(S, frames, mels)`` joined with ``context`` neighbours on either side."""
    if context == 0:
        return melgrams
    padded = torch.cat([melgrams[:1].expand(context, -1, -1), melgrams,
                        melgrams[-1:].expand(context, -1, -1)])
    windows = padded.unfold(0, 2 * context + 1, 1)  # (S, frames, mels, width)
    count, frames, mels, width = windows.shape
    return windows.permute(0, 3, 1, 2).reshape(count, width * frames, mels)


def flat_size(body: nn.Module, input_shape: tuple[int, ...]) -> int:
    """How many values ``body`` makes of one input of ``input_shape``."""
    with torch.no_grad():
        return int(body(torch.zeros(1, *input_shape)).numel())


def as_image(x: torch.Tensor) -> torch.Tensor:
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
        return as_image(x)


class GlobalPool(nn.Module):
    """Average and max over the last two axes, concatenated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
