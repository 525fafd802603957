"""Transfer learning: start a model from another checkpoint's backbone.

A backbone is everything of a checkpoint but its head: the architecture, its
settings, the front end it was trained with (the new model must be fed the
same features) and every tensor outside ``head.``. A genre model can start
from any backbone: the bundled ``musicnn-msd`` and ``musicnn-mtt``
(musicnn's Million Song Dataset and MagnaTagATune taggers) are two; several
backbones can also stand side by side. An emotion model starts from a genre
model's backbone, in the emotion variant of its architecture
(``EMOTION_ARCHITECTURES``), or from scratch; where it starts is decided
before any data is loaded, since the data must go through its front end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tagger.cards import bundled_weights_path, sha256_of
from tagger.checkpoints import LoadedModel, load_checkpoint
from tagger.errors import ModelError
from tagger.features import FrontEndSpec
from tagger.models import EmotionRegressor, architecture_defaults, build_model
from tagger.tasks import GENRE

HEAD_PREFIX = "head."
# Settings named so describe a model's head, which a model started from its backbone replaces.
HEAD_SETTING_PREFIX = "head_"


@dataclass(frozen=True)
class Backbone:
    architecture: str
    hyperparameters: dict[str, Any]
    front_end: FrontEndSpec
    tensors: dict[str, torch.Tensor]
    note: dict[str, Any]  # where it came from, for the new model's card


def load_backbone(path: Path) -> Backbone:
    """The backbone of the checkpoint at ``path`` (a file, card or run folder, or the name of
    a bundled model such as ``musicnn-msd``)."""
    return backbone_of(load_checkpoint(path))


def load_backbones(paths: list[Path]) -> Backbone:
    """The backbone of one checkpoint, or of several side by side (``joint``): each keeps
    its architecture, settings and tensors; they must share one front end."""
    if len(paths) == 1:
        return load_backbone(paths[0])
    members = [load_backbone(path) for path in paths]
    front_end = members[0].front_end
    for member in members[1:]:
        if member.front_end != front_end:
            raise ModelError(f"hears audio through another front end than "
                             f"{members[0].note['model']}", member.note["path"],
                             "join backbones trained on the same features")
    return Backbone(
        architecture="joint",
        hyperparameters={"members": [{"architecture": m.architecture,
                                      "hyperparameters": m.hyperparameters} for m in members]},
        front_end=front_end,
        tensors={f"members.{i}.{name}": tensor for i, m in enumerate(members)
                 for name, tensor in m.tensors.items()},
        note={"model": " + ".join(m.note["model"] for m in members), "architecture": "joint",
              "path": " + ".join(m.note["path"] for m in members),
              "members": [m.note for m in members]},
    )


def backbone_of(loaded: LoadedModel) -> Backbone:
    card, where = loaded.card, str(loaded.path)
    if card.front_end is None:
        raise ModelError("was trained on precomputed features, not on audio", where,
                         "start from a checkpoint trained on audio")
    return Backbone(
        architecture=card.architecture,
        hyperparameters={key: value for key, value in card.hyperparameters.items()
                         if not key.startswith(HEAD_SETTING_PREFIX)},
        front_end=card.front_end,
        tensors={k: v for k, v in loaded.model.state_dict().items()
                 if not k.startswith(HEAD_PREFIX)},
        note={"model": card.name, "task": card.task, "architecture": card.architecture,
              "path": where, "sha256": sha256_of(loaded.path)},
    )


def copy_backbone_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], where: str,
                          hint: str, what: str = "the new model") -> int:
    """Copy a backbone's ``tensors`` (from the checkpoint at ``where``) into ``model``, whose
    head stays new; returns how many. Every tensor must fit, and cover all but the head."""
    own = model.state_dict()
    misfits = [k for k, v in tensors.items() if k not in own or own[k].shape != v.shape]
    uncovered = [k for k in own if k not in tensors and not k.startswith(HEAD_PREFIX)]
    if misfits or uncovered:
        raise ModelError(f"its backbone does not fit {what}", where, hint)
    model.load_state_dict(tensors, strict=False)
    return len(tensors)


def copy_backbone(model: nn.Module, backbone: Backbone) -> int:
    """Copy ``backbone`` into ``model``; returns the number of tensors copied."""
    return copy_backbone_tensors(model, backbone.tensors, backbone.note["path"],
                                 "settings given with --hparam may change the head only")


# -- emotion models -------------------------------------------------------------------------

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
    if card.task != GENRE:
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
