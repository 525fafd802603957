"""The emotion regression model: a genre model's backbone with a small regression head.

The emotion variants of the genre architectures (``EMOTION_ARCHITECTURES``)
live in ``tagger.models``, so checkpoints load through the same
``build_model``. This module decides where training starts, before any data
is loaded, since the data must go through the starting point's front end:
from scratch, or from a genre checkpoint, whose architecture, backbone
hyper-parameters, front end (context included) and backbone weights the
emotion model takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tagger.checkpoints import bundled_weights_path, load_checkpoint
from tagger.errors import ModelError
from tagger.features import FrontEndSpec
from tagger.models import EmotionRegressor, architecture_defaults, build_model
from tagger.transfer import HEAD_PREFIX, backbone_of, copy_backbone_tensors

# The emotion architecture that fine-tunes each genre architecture's backbone.
EMOTION_ARCHITECTURES: dict[str, str] = {"genre-cnn": "emotion-cnn", "tf-cnn": "emotion-tf-cnn",
                                         "musicnn": "emotion-musicnn", "joint": "emotion-joint"}
SCRATCH_ARCHITECTURE = "emotion-cnn"
# The bundled genre model emotion training starts from by default.
EMOTION_START_MODEL = "genre-musicnn11"
GENRE_HINT = f"pass --genre-weights with a {', '.join(EMOTION_ARCHITECTURES)} genre model"


@dataclass(frozen=True)
class StartingPoint:
    """Where an emotion model starts: its architecture, backbone hyper-parameters and front
    end, and, from a genre model, that model's backbone tensors; ``note`` names it for the
    model card."""

    architecture: str
    spec: FrontEndSpec
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    backbone: dict[str, torch.Tensor] | None = None
    note: dict[str, Any] = field(default_factory=lambda: {"from": "scratch"})

    def model_hyperparameters(self, head: dict[str, Any]) -> dict[str, Any]:
        """Every hyper-parameter of the emotion model: the architecture's defaults, then the
        backbone's, then ``head`` (e.g. ``head_hidden``)."""
        return {**architecture_defaults(self.architecture), **self.hyperparameters, **head}


def starting_point(init: str, genre_weights: Path | None = None) -> StartingPoint:
    """``init`` "scratch": emotion-cnn on the default front end. "genre": everything from the
    genre checkpoint ``genre_weights`` (default: the bundled ``EMOTION_START_MODEL``)."""
    if init == "scratch":
        return StartingPoint(SCRATCH_ARCHITECTURE, FrontEndSpec())
    loaded = load_checkpoint(genre_weights or bundled_weights_path(EMOTION_START_MODEL))
    card, where = loaded.card, str(loaded.path)
    if card.task != "genre":
        raise ModelError(f"is a model of the {card.task} task, not a genre model", where,
                         GENRE_HINT)
    if card.architecture not in EMOTION_ARCHITECTURES:
        raise ModelError(f"its architecture {card.architecture} has no emotion variant", where,
                         GENRE_HINT)
    if card.front_end is None:
        raise ModelError("was trained on precomputed features, not on audio", where,
                         f"{GENRE_HINT} trained on audio")
    backbone = backbone_of(loaded)
    return StartingPoint(
        architecture=EMOTION_ARCHITECTURES[card.architecture],
        spec=backbone.front_end,
        hyperparameters=backbone.hyperparameters,
        backbone=backbone.tensors,
        note={"from": "genre", **backbone.note, "classes": card.classes},
    )


def build_emotion_model(
    n_targets: int, start: StartingPoint, head: dict[str, Any]
) -> EmotionRegressor:
    """The emotion model of ``start`` (freshly initialised) with ``head``'s settings."""
    model = build_model(start.architecture, n_targets, start.spec.input_shape,
                        start.model_hyperparameters(head))
    assert isinstance(model, EmotionRegressor)
    return model


def init_from_genre(model: EmotionRegressor, start: StartingPoint) -> int:
    """Copy the genre backbone of ``start`` (every tensor but the head's) into ``model``;
    returns the number of tensors copied."""
    assert start.backbone is not None, "a starting point from scratch has no backbone"
    return copy_backbone_tensors(model, start.backbone, start.note["path"],
                                 "the emotion settings may change the head only",
                                 "the emotion model")


def backbone_and_head(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The backbone's parameters and the head's, for separate learning rates."""
    head, backbone = [], []
    for name, parameter in model.named_parameters():
        (head if name.startswith(HEAD_PREFIX) else backbone).append(parameter)
    return backbone, head
