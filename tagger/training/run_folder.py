"""A run folder: what ``retrain`` writes (the checkpoint and its card, ``metrics.json``,
``config.json``, reports), refused when it holds anything else, cleared before a new run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from tagger.atomic import atomic_write_text
from tagger.cards import ModelCard
from tagger.checkpoints import save_checkpoint
from tagger.errors import TaggerError
from tagger.training.options import RetrainOptions

# What a run writes into its folder: a folder holding nothing else is an earlier run.
RUN_FILES = ("model.safetensors", "model.json", "metrics.json", "config.json", "report.md",
             "pictures", "sweep", "folds.json", "folds.md")


def _is_run_file(name: str) -> bool:
    return name in RUN_FILES or (name.startswith("sweep-") and name.endswith((".md", ".json")))


def check_run_folder(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, a run folder that holds anything but an earlier finished run
    (unless ``overwrite``): its files would be overwritten."""
    if not out.exists():
        return
    if not out.is_dir():
        raise TaggerError("is a file, not a run folder", str(out), "choose another --out")
    if overwrite:
        return
    names = sorted(p.name for p in out.iterdir())
    others = [name for name in names if not _is_run_file(name)]
    if others or (names and "config.json" not in names):
        shown = ", ".join((others or names)[:3]) + (", ..." if len(others or names) > 3 else "")
        raise TaggerError(f"holds files that are not a finished genre-tag run ({shown})",
                          str(out), "choose another --out, or pass --overwrite to write "
                                    "the run into it")


def clear_run_folder(out: Path) -> None:
    """Remove an earlier run's files from ``out`` (never any other file), just before the new
    run writes its own, so nothing stale stays beside them."""
    for path in out.iterdir() if out.is_dir() else []:
        if _is_run_file(path.name):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def write_run(options: RetrainOptions, model: torch.nn.Module, card: ModelCard,
              metrics: dict[str, Any]) -> None:
    """The run folder: the checkpoint and its card, ``metrics.json`` and ``config.json``."""
    out = options.run_dir
    clear_run_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, card, out / "model.safetensors")
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_config(options)


def write_config(options: RetrainOptions) -> None:
    options.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(options.run_dir / "config.json",
                      json.dumps(options.to_dict(), indent=2) + "\n")
