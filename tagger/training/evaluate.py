"""``genre-tag evaluate`` and ``calibrate``: measure a genre checkpoint on labelled audio it
was not trained on, or fit its calibration to such audio.

The data is read in any audio layout (``audio`` or ``sources``) through the
checkpoint's own front end; genres are matched by name, so a model can be
measured on data with other genres (clips of genres the model does not know
are left out and counted). Probabilities are calibrated by the
card's temperature, as tagging does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tagger.checkpoints import LoadedModel, load_checkpoint, save_checkpoint
from tagger.datasets.layouts import load_dataset
from tagger.datasets.splits import Dataset, Split
from tagger.errors import DatasetError, ModelError
from tagger.results import softmax
from tagger.training.calibration import calibrate, expected_calibration_error
from tagger.training.crossval import fold_figures
from tagger.training.predict import predict_logits


def load_for_evaluation(
    weights: Path, data: Path, layout: str, options: dict[str, Any], device: torch.device,
    on_clip: Callable[[str, str | None], None] | None = None,
) -> tuple[LoadedModel, Dataset]:
    """A genre checkpoint and labelled audio read through its front end."""
    loaded = load_checkpoint(weights, device)
    card = loaded.card
    if card.task != "genre" or card.front_end is None:
        raise ModelError("is not a genre model that tags audio", str(loaded.path),
                         "use a checkpoint written by 'genre-tag retrain' on audio")
    dataset = load_dataset(data, layout, {**options, "front_end": card.front_end}, on_clip)
    return loaded, dataset


def evaluate_checkpoint(
    weights: Path, data: Path, layout: str, options: dict[str, Any], device: torch.device,
    splits: tuple[str, ...] = ("valid",),
    on_clip: Callable[[str, str | None], None] | None = None,
) -> dict[str, Any]:
    """Per second and per clip figures (overall and per source) of ``weights`` on ``splits``."""
    loaded, dataset = load_for_evaluation(weights, data, layout, options, device, on_clip)
    card = loaded.card
    temperature = float(card.calibration.get("temperature", 1.0))
    results: dict[str, Any] = {"model": card.name, "classes": card.classes,
                               "temperature": temperature, "splits": {}}
    for name in splits:
        if name not in dataset.splits:
            raise DatasetError(f"has no {name} split", str(data))
        split, labels, unknown = _relabelled(dataset, name, card.classes)
        probabilities = softmax(predict_logits(loaded.model, split, device, dataset.context),
                                temperature)
        figures = fold_figures(probabilities, split, card.classes)
        summary = {level: {"accuracy": round(report["accuracy"], 4),
                           "macro_f1": round(report["macro_f1"], 4), "n": report["n"]}
                   for level, report in figures.items()}
        summary["ece"] = round(expected_calibration_error(probabilities, labels), 4)
        results["splits"][name] = {"summary": summary, "reports": figures,
                                   "genres_unknown_to_model": unknown}
    return results


def calibrate_checkpoint(
    weights: Path, data: Path, layout: str, options: dict[str, Any], device: torch.device,
    uncertain_below: float, out: Path, split: str = "valid", name: str | None = None,
) -> dict[str, Any]:
    """Fit the temperature of ``weights`` on ``split`` of ``data`` and write the checkpoint,
    with that calibration and ``uncertain_below`` in its card (and ``name``, if given), to
    ``out``."""
    loaded, dataset = load_for_evaluation(weights, data, layout, options, device)
    card = loaded.card
    if split not in dataset.splits:
        raise DatasetError(f"has no {split} split", str(data))
    held_out, labels, _ = _relabelled(dataset, split, card.classes)
    report = calibrate(predict_logits(loaded.model, held_out, device, dataset.context), labels,
                       uncertain_below)
    report["data"] = f"{data} ({split})"
    calibrated = replace(card, name=name or card.name,
                         calibration={"temperature": report["temperature"],
                                      "uncertain_below": uncertain_below},
                         evaluation={**card.evaluation, "calibration": report})
    save_checkpoint(loaded.model, calibrated, resolve_output_path(out))
    return report


def resolve_output_path(out: Path) -> Path:
    """A run folder gets ``model.safetensors``; a file name gets the .safetensors suffix."""
    out = Path(out)
    if out.suffix != ".safetensors":
        out = out / "model.safetensors" if not out.suffix else out.with_suffix(".safetensors")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _relabelled(dataset: Dataset, name: str,
                classes: list[str]) -> tuple[Split, np.ndarray, dict[str, int]]:
    """The split's rows of genres the model knows, labelled with the model's class indices,
    and the seconds left out per unknown genre."""
    split = dataset.splits[name]
    unknown = {g: int((split.labels == i).sum()) for i, g in enumerate(dataset.classes)
               if g not in classes}
    mapping = np.array([classes.index(g) if g in classes else -1 for g in dataset.classes])
    labels = mapping[split.labels]
    known = split.subset(np.flatnonzero(labels >= 0))
    known = replace(known, labels=labels[labels >= 0])
    return known, known.labels, unknown
