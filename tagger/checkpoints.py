"""Checkpoints: safetensors weights plus a JSON model card, never pickles.

A checkpoint is ``NAME.safetensors``, whose header metadata carries the model
card (classes, architecture and hyper-parameters, front end, training
provenance), and a sidecar ``NAME.json``: the same card plus evaluation
figures and the sha256 of the weights file, verified on every load.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from tagger.atomic import atomic_write_bytes, atomic_write_text
from tagger.errors import ModelError
from tagger.features import FrontEndSpec
from tagger.models import build_model
from tagger.tasks import DEFAULT_GENRE_MODEL

CARD_FORMAT = "genre-tag-card/1"


@dataclass
class ModelCard:
    name: str
    task: str
    classes: list[str]
    architecture: str
    hyperparameters: dict[str, Any]
    # How features are computed from audio; None for models trained on
    # precomputed features we cannot reproduce (they cannot tag audio).
    front_end: FrontEndSpec | None
    input_shape: tuple[int, ...]
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    # Genre models: ``temperature`` (logits are divided by it before the softmax) and
    # ``uncertain_below`` (a second whose top calibrated probability is lower has no
    # clear genre). Empty for uncalibrated models.
    calibration: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CARD_FORMAT,
            "name": self.name,
            "task": self.task,
            "classes": list(self.classes),
            "architecture": self.architecture,
            "hyperparameters": self.hyperparameters,
            "front_end": self.front_end.to_dict() if self.front_end else None,
            "input_shape": list(self.input_shape),
            "training": self.training,
            "evaluation": self.evaluation,
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        if data.get("format") != CARD_FORMAT:
            raise ValueError(f"unsupported card format {data.get('format')!r}")
        return cls(
            name=data["name"],
            task=data["task"],
            classes=list(data["classes"]),
            architecture=data["architecture"],
            hyperparameters=dict(data["hyperparameters"]),
            front_end=FrontEndSpec.from_dict(data["front_end"]) if data["front_end"] else None,
            input_shape=tuple(data["input_shape"]),
            training=dict(data.get("training", {})),
            evaluation=dict(data.get("evaluation", {})),
            calibration=dict(data.get("calibration", {})),
        )


@dataclass
class LoadedModel:
    card: ModelCard
    model: torch.nn.Module
    path: Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_path_for(weights_path: Path) -> Path:
    return weights_path.with_suffix(".json")


def save_checkpoint(model: torch.nn.Module, card: ModelCard, weights_path: Path) -> None:
    """Write ``weights_path`` (.safetensors) and its card atomically."""
    card_dict = card.to_dict()
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(
        weights_path, safetensors_bytes(tensors, metadata={"card": json.dumps(card_dict)})
    )
    card_dict["sha256"] = sha256_of(weights_path)
    atomic_write_text(card_path_for(weights_path), json.dumps(card_dict, indent=2) + "\n")


def bundled_weights_path(name: str = DEFAULT_GENRE_MODEL) -> Path:
    return Path(str(resources.files("tagger.weights").joinpath(f"{name}.safetensors")))


def resolve_weights_path(path: Path) -> Path:
    """Accept a .safetensors file, its .json card, a run folder holding model.safetensors, or
    the name of a bundled model (e.g. ``genre-sources11``)."""
    path = Path(path)
    if not path.exists() and path.name == str(path) and bundled_weights_path(path.name).is_file():
        return bundled_weights_path(path.name)
    if path.is_dir():
        path = path / "model.safetensors"
    elif path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    return path


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a checkpoint, verifying its checksum against the card when one is beside it."""
    path = resolve_weights_path(path)
    hint = "use a checkpoint written by 'genre-tag retrain', or reinstall genre-tag"
    if not path.is_file():
        raise ModelError("no model weights here", str(path), hint)
    card_path = card_path_for(path)
    if card_path.is_file():
        try:
            expected = json.loads(card_path.read_text(encoding="utf-8")).get("sha256")
        except (OSError, json.JSONDecodeError) as error:
            raise ModelError(f"unreadable model card: {error}", str(card_path), hint) from error
        if expected and sha256_of(path) != expected:
            raise ModelError(
                "weights do not match the checksum in their model card (tampered or damaged)",
                str(path),
                hint,
            )
    try:
        with safe_open(str(path), framework="pt", device="cpu") as reader:
            metadata = reader.metadata() or {}
            state = {key: reader.get_tensor(key) for key in reader.keys()}  # noqa: SIM118
        card = ModelCard.from_dict(json.loads(metadata["card"]))
        model = build_model(card.architecture, len(card.classes), card.input_shape,
                            card.hyperparameters)
        model.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, RuntimeError) as error:
        raise ModelError(f"not a usable genre-tag checkpoint: {error}", str(path), hint) from error
    model.to(device).eval()
    return LoadedModel(card=card, model=model, path=path)
