"""The emotion regression model: the genre CNN's backbone with a small regression head.

``EmotionCNN`` lives in ``tagger.models`` (registered as ``emotion-cnn``, so
checkpoints load through the same ``build_model``); this module builds it for
training, from scratch or with the backbone initialised from a genre model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from tagger.checkpoints import bundled_weights_path, load_checkpoint
from tagger.errors import ModelError
from tagger.features import FrontEndSpec
from tagger.models import EmotionCNN, build_model

ARCHITECTURE = "emotion-cnn"
HEAD_PREFIX = "head."


def build_emotion_model(
    n_targets: int, spec: FrontEndSpec, hyperparameters: dict[str, Any]
) -> EmotionCNN:
    model = build_model(ARCHITECTURE, n_targets, (spec.n_frames, spec.n_mels), hyperparameters)
    assert isinstance(model, EmotionCNN)
    return model


def init_from_genre(
    model: EmotionCNN, spec: FrontEndSpec, genre_weights: Path | None = None
) -> dict[str, Any]:
    """Copy every backbone tensor (all but the head) of a genre checkpoint into ``model``.

    The genre model must have the same front end and channels. Returns a note
    for the model card: the source model's name and sha256-verified path.
    """
    loaded = load_checkpoint(genre_weights or bundled_weights_path())
    source = loaded.card
    hint = "initialise from a genre model with the same front end and channels"
    if source.task != "genre" or source.architecture != "genre-cnn":
        raise ModelError(f"is a {source.task} model, not a genre CNN", str(loaded.path), hint)
    if source.front_end != spec:
        raise ModelError("its front end differs from the emotion model's", str(loaded.path), hint)
    backbone = {k: v for k, v in loaded.model.state_dict().items()
                if not k.startswith(HEAD_PREFIX)}
    missing, unexpected = model.load_state_dict(backbone, strict=False)
    if unexpected or any(not k.startswith(HEAD_PREFIX) for k in missing):
        raise ModelError("its backbone does not fit the emotion model", str(loaded.path), hint)
    return {"model": source.name, "classes": source.classes,
            "tensors_copied": len(backbone)}


def backbone_and_head(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The backbone's parameters and the head's, for separate learning rates."""
    head, backbone = [], []
    for name, parameter in model.named_parameters():
        (head if name.startswith(HEAD_PREFIX) else backbone).append(parameter)
    return backbone, head
