"""Transfer learning: start a genre model from another checkpoint's backbone.

A backbone is everything of a checkpoint but its head: the architecture, its
settings, the front end it was trained with (the new model must be fed the
same features) and every tensor outside ``head.``. The bundled
``musicnn-msd`` and ``musicnn-mtt`` (musicnn's Million Song Dataset and
MagnaTagATune taggers) are two; several backbones can also stand side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tagger.checkpoints import LoadedModel, load_checkpoint, sha256_of
from tagger.errors import ModelError
from tagger.features import FrontEndSpec

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
