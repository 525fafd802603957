"""Checkpoints: safetensors weights plus a JSON model card (``tagger.cards``), never
pickles; loading builds the torch model the card describes."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from tagger.atomic import atomic_write_bytes, atomic_write_text
from tagger.cards import (
    CHECKPOINT_HINT,
    CONTENT_CHECKSUM_KEY,
    ModelCard,
    card_path_for,
    content_digest,
    read_card,
    sha256_of,
)
from tagger.errors import ModelError
from tagger.models import build_model


@dataclass
class LoadedModel:
    card: ModelCard
    model: torch.nn.Module
    path: Path


def checkpoint_bytes(model: torch.nn.Module, card: ModelCard) -> bytes:
    """The safetensors file of ``model``: its header carries the card and the content
    checksum, so the file can be verified without its sidecar."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"card": json.dumps(card.to_dict())}
    unsigned = safetensors_bytes(tensors, metadata=metadata)
    (length,) = struct.unpack("<Q", unsigned[:8])
    header = json.loads(unsigned[8 : 8 + length])
    metadata[CONTENT_CHECKSUM_KEY] = content_digest(header, unsigned[8 + length :])
    return safetensors_bytes(tensors, metadata=metadata)


def save_checkpoint(model: torch.nn.Module, card: ModelCard, weights_path: Path) -> None:
    """Write ``weights_path`` (.safetensors) and its card atomically."""
    atomic_write_bytes(weights_path, checkpoint_bytes(model, card))
    card_dict = {**card.to_dict(), "sha256": sha256_of(weights_path)}
    atomic_write_text(card_path_for(weights_path), json.dumps(card_dict, indent=2) + "\n")


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a checkpoint after verifying it (``tagger.cards.read_card``); nothing is
    unpickled."""
    card, path = read_card(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as reader:
            state = {key: reader.get_tensor(key) for key in reader.keys()}  # noqa: SIM118
        model = build_model(card.architecture, len(card.classes), card.input_shape,
                            card.hyperparameters)
        model.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, RuntimeError) as error:
        raise ModelError(f"not a usable genre-tag checkpoint: {error}", str(path),
                         CHECKPOINT_HINT) from error
    model.to(device).eval()
    return LoadedModel(card=card, model=model, path=path)
