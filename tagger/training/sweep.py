"""``retrain --sweep``: one genre training per setting of an optimizer, activation,
scheduler or batch size, and a table comparing them (``sweep-NAME.md`` and ``.json``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rich.console import Console

from tagger.atomic import atomic_write_text
from tagger.datasets.splits import Dataset
from tagger.errors import TaggerError
from tagger.models import ACTIVATIONS, architecture_defaults
from tagger.training.options import OPTIMIZERS, SCHEDULERS, GenreOptions, RunResult

BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64]
SWEEP_SETTINGS: dict[str, tuple[str, list[Any]]] = {
    "optimizers": ("optimizer", list(OPTIMIZERS)),
    "activations": ("activation", list(ACTIVATIONS)),
    "schedulers": ("scheduler", list(SCHEDULERS)),
    "batch-sizes": ("batch_size", BATCH_SIZES),
}


def check_sweep(options: GenreOptions, sweep: str | None) -> None:
    """Refuse a sweep the architecture cannot take, before any data is read."""
    if sweep == "activations" and "activation" not in architecture_defaults(
            options.train.architecture):
        raise TaggerError(f"{options.train.architecture} has no activation setting",
                          hint="sweep activations with --arch mfcc-ffn or uoa-cnn")


def run_sweep(options: GenreOptions, dataset: Dataset, command: str, sweep: str,
              console: Console, train_once: Callable[[GenreOptions, str], RunResult]
              ) -> RunResult:
    """``train_once`` (a run's options, a note for its command) per setting of ``sweep``,
    each into ``OUT/sweep/SETTING-VALUE``; Ctrl-C ends the sweep with the settings so far."""
    setting, values = SWEEP_SETTINGS[sweep]
    rows, stopped = [], "completed"
    for value in values:
        console.rule(f"{setting} = {value}")
        train = options.train
        if setting == "activation":
            train = replace(train, hyperparameters={**train.hyperparameters, setting: value})
        else:
            train = replace(train, **{setting: value})
        run = replace(options, train=train, out=options.run_dir / "sweep" / f"{setting}-{value}",
                      name=f"{options.name}-{setting}-{value}")
        result = train_once(run, f"sweep {setting}={value}")
        summary = result.evaluation
        metrics = json.loads((run.run_dir / "metrics.json").read_text())
        seconds = [h["seconds"] for h in metrics["history"]]
        level = next(k for k in summary["valid"] if k.endswith("_accuracy")).removesuffix(
            "_accuracy")
        rows.append({setting: value,
                     "valid_accuracy": summary["valid"][f"{level}_accuracy"],
                     "valid_macro_f1": summary["valid"][f"{level}_macro_f1"],
                     "test_accuracy": summary.get("test", {}).get(f"{level}_accuracy"),
                     "test_macro_f1": summary.get("test", {}).get(f"{level}_macro_f1"),
                     "seconds_per_epoch": round(sum(seconds) / len(seconds), 4)})
        if result.stopped == "interrupted":  # Ctrl-C: the table of the settings so far
            stopped = result.stopped
            break
    table = [f"| {setting} | valid accuracy | valid macro-F1 | test accuracy | test macro-F1 "
             "| seconds per epoch |", "|---|---|---|---|---|---|"]
    for row in rows:
        cells = [row[setting], row["valid_accuracy"], row["valid_macro_f1"],
                 row["test_accuracy"], row["test_macro_f1"], row["seconds_per_epoch"]]
        table.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    atomic_write_text(options.run_dir / f"sweep-{sweep}.md", "\n".join(table) + "\n")
    atomic_write_text(options.run_dir / f"sweep-{sweep}.json", json.dumps(rows, indent=2) + "\n")
    console.print("\n".join(table), highlight=False)
    return RunResult(options.run_dir, stopped, {"sweep": rows})
