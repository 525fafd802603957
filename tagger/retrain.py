"""The ``genre-tag retrain`` workflow: data in, a run folder out.

RUN_DIR gets ``model.safetensors`` + ``model.json`` (usable with
``genre-tag --weights RUN_DIR``), ``metrics.json``, ``config.json`` (everything
the run used: ``genre-tag retrain --config RUN_DIR/config.json`` repeats it),
``report.md`` and its pictures. ``sweep`` runs one training per setting of an
optimizer, activation, scheduler or batch size and writes a comparison table.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tagger.atomic import atomic_write_text
from tagger.datasets import Dataset, load_dataset
from tagger.devices import select_device
from tagger.errors import TaggerError
from tagger.models import ARCHITECTURES, architecture_defaults, build_model
from tagger.reports import write_report
from tagger.training import EpochRecord, TrainConfig, train_classifier, write_run
from tagger.transfer import Backbone, load_backbones

SWEEP_SETTINGS: dict[str, tuple[str, list[Any]]] = {
    "optimizers": ("optimizer", ["sgd", "adam", "adamw", "adagrad", "rmsprop"]),
    "activations": ("activation", ["none", "relu", "leaky-relu", "elu", "gelu", "tanh",
                                   "sigmoid"]),
    "schedulers": ("scheduler", ["none", "step", "cosine", "plateau", "onecycle"]),
    "batch-sizes": ("batch_size", [1, 2, 4, 8, 16, 32, 64]),
}


@dataclass
class RetrainOptions:
    data: Path
    out: Path = Path("runs/genre")
    layout: str = "auto"
    features: str | None = None  # course: melgrams|mfccs; ntua: mel|chroma|fused
    valid_share: float = 0.2
    max_frames: int | None = None
    context: int = 0  # audio and sources layouts: neighbouring seconds on each side
    genres: list[str] | None = None  # sources layout: the vocabulary to keep
    # Start from these checkpoints' backbones (side by side when several), architecture,
    # settings and front end.
    init_weights: list[Path] = field(default_factory=list)
    folds: int = 0  # k-fold cross-validation over train + valid instead of one run (0: off)
    cache_dir: Path | None = None
    name: str = "genre-model"
    device: str = "auto"
    threads: int = 0
    gradcam_examples: int = 2
    tsne: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("data", "out", "cache_dir"):
            data[key] = str(data[key]) if data[key] is not None else None
        data["init_weights"] = [str(path) for path in self.init_weights]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrainOptions:
        values = dict(data)
        values["train"] = TrainConfig.from_dict(values.get("train", {}))
        for key in ("data", "out", "cache_dir"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        given = values.get("init_weights") or []
        values["init_weights"] = [Path(p) for p in ([given] if isinstance(given, str) else given)]
        return cls(**values)


def read_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise TaggerError(f"not a readable run configuration: {error}", str(path),
                          "pass the config.json of an earlier run") from error


def load_data(options: RetrainOptions, console: Console,
              backbone: Backbone | None = None) -> Dataset:
    # The MFCC network reads the course's MFCC half unless told otherwise.
    features = options.features or ("mfccs" if options.train.architecture == "mfcc-ffn" else None)
    layout_options = {"valid_share": options.valid_share, "seed": options.train.seed,
                      "cache_dir": options.cache_dir, "features": features,
                      "max_frames": options.max_frames, "context": options.context,
                      "genres": options.genres}
    if backbone is not None:
        layout_options["front_end"] = backbone.front_end
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("reading training data", total=None)

        def on_clip(name: str, error: str | None) -> None:
            if error:
                console.print(f"[yellow]skipped[/] {error}", highlight=False)
            progress.advance(task)

        dataset = load_dataset(options.data, options.layout, layout_options, on_clip)
    for split, rows in dataset.splits.items():
        console.print(f"{split}: {len(rows)} {dataset.row_unit}s "
                      f"from {len(set(rows.clip_ids.tolist()))} clips", highlight=False)
    return dataset


def train_and_report(options: RetrainOptions, dataset: Dataset, command: str,
                     console: Console, backbone: Backbone | None = None) -> dict[str, Any]:
    """One training run into ``options.out``; returns the card's evaluation summary."""
    device = select_device(options.device)
    config = options.train
    architecture = ARCHITECTURES.get(config.architecture)
    if architecture is not None and architecture.task != "genre":
        raise TaggerError(f"{config.architecture} is an emotion model",
                          hint="train it with genre-tag retrain --task emotion")

    progress = Progress(TextColumn("training {task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                        transient=True)
    epochs = progress.add_task(config.architecture, total=config.epochs)

    def on_epoch(record: EpochRecord) -> None:
        clip = (f"  valid acc/clip {record.valid_clip_accuracy:.3f}"
                if record.valid_clip_accuracy is not None else "")
        console.print(
            f"epoch {record.epoch:3d}  loss {record.train_loss:.3f}  "
            f"acc {record.train_accuracy:.3f}  valid loss {record.valid_loss:.3f}  "
            f"acc {record.valid_accuracy:.3f}  F1 {record.valid_macro_f1:.3f}{clip}  "
            f"{record.seconds:.1f}s ({device.type})", highlight=False)
        progress.advance(epochs)

    try:
        build_model(config.architecture, len(dataset.classes), dataset.input_shape,
                    config.hyperparameters)
    except (ValueError, RuntimeError) as error:  # an architecture that does not fit the input
        raise TaggerError(f"cannot build {config.architecture} for inputs of shape "
                          f"{dataset.input_shape}: {error}",
                          hint="genre-tag retrain --list-archs shows each one's settings") \
            from error
    with progress:
        outcome = train_classifier(config, dataset, device, on_epoch, backbone)
    if outcome.stopped != "completed":
        console.print(f"{outcome.stopped}: keeping epoch {outcome.kept_epoch}")
    provenance = {"data": str(options.data), "command": command, "device": str(device),
                  "torch": torch.__version__, "python": platform.python_version()}
    if backbone is not None:
        provenance["init"] = backbone.note
    card, evaluation = write_run(options.out, outcome, config, dataset, device, provenance,
                                 options.name)
    atomic_write_text(options.out / "config.json", json.dumps(options.to_dict(), indent=2) + "\n")
    if not config.overfit_batch:
        write_report(options.out, outcome, dataset, evaluation, device,
                     options.gradcam_examples, options.tsne, config.seed)
    for split, figures in card.evaluation.items():
        levels = [k.removesuffix("_accuracy") for k in figures if k.endswith("_accuracy")]
        text = ", ".join(f"{level.replace('_', ' ')}: accuracy {figures[level + '_accuracy']:.3f}"
                         f" (macro-F1 {figures[level + '_macro_f1']:.3f})" for level in levels)
        console.print(f"{split}: {text}", highlight=False)
        for source, source_figures in figures.get("sources", {}).items():
            text = ", ".join(f"{level.removeprefix('per_').replace('_', ' ')} "
                             f"{source_figures[level + '_accuracy']:.3f} "
                             f"(F1 {source_figures[level + '_macro_f1']:.3f})"
                             for level in ("per_second", "per_clip"))
            console.print(f"  {source}: {text}", highlight=False)
    calibration = card.evaluation["valid"]["calibration"]
    console.print(f"calibration: temperature {calibration['temperature']:.2f}, ECE "
                  f"{calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f}; "
                  f"{calibration['uncertain_share']:.0%} of valid seconds uncertain",
                  highlight=False)
    return card.evaluation


def run_retrain(options: RetrainOptions, command_line: Callable[[dict[str, Any]], str],
                sweep: str | None = None) -> int:
    """Train (once, per fold or per sweep setting); ``command_line`` spells the options,
    with what ``--init-weights`` decides filled in, as the command the card records."""
    console = Console(stderr=True)
    if options.threads:
        torch.set_num_threads(options.threads)
    if sweep == "activations" and "activation" not in architecture_defaults(
            options.train.architecture):
        raise TaggerError(f"{options.train.architecture} has no activation setting",
                          hint="sweep activations with --arch mfcc-ffn or uoa-cnn")
    backbone = None
    if options.init_weights:
        backbone = load_backbones(options.init_weights)
        options = replace(
            options, context=options.context or backbone.front_end.context_segments,
            train=replace(options.train, architecture=backbone.architecture,
                          hyperparameters={**backbone.hyperparameters,
                                           **options.train.hyperparameters}))
    elif options.train.freeze_backbone:
        raise TaggerError("--freeze-backbone needs a backbone to freeze",
                          hint="give --init-weights CKPT (e.g. musicnn-msd)")
    command = command_line(options.to_dict())
    dataset = load_data(options, console, backbone)
    if options.folds:
        return run_folds(options, dataset, command, console, backbone)
    if sweep is None:
        train_and_report(options, dataset, command, console, backbone)
        console.print(f"run folder: {options.out}  (tag with: genre-tag --weights "
                      f"{options.out} SONG)", highlight=False)
        return 0
    return run_sweep(options, dataset, command, sweep, console, backbone)


def run_sweep(options: RetrainOptions, dataset: Dataset, command: str, sweep: str,
              console: Console, backbone: Backbone | None = None) -> int:
    setting, values = SWEEP_SETTINGS[sweep]
    rows = []
    for value in values:
        console.rule(f"{setting} = {value}")
        train = options.train
        if setting == "activation":
            train = replace(train, hyperparameters={**train.hyperparameters, setting: value})
        else:
            train = replace(train, **{setting: value})
        run = replace(options, train=train, out=options.out / "sweep" / f"{setting}-{value}",
                      name=f"{options.name}-{setting}-{value}")
        summary = train_and_report(run, dataset, f"{command} (sweep {setting}={value})", console,
                                   backbone)
        metrics = json.loads((run.out / "metrics.json").read_text())
        seconds = [h["seconds"] for h in metrics["history"]]
        level = next(k for k in summary["valid"] if k.endswith("_accuracy")).removesuffix(
            "_accuracy")
        rows.append({setting: value,
                     "valid_accuracy": summary["valid"][f"{level}_accuracy"],
                     "valid_macro_f1": summary["valid"][f"{level}_macro_f1"],
                     "test_accuracy": summary.get("test", {}).get(f"{level}_accuracy"),
                     "test_macro_f1": summary.get("test", {}).get(f"{level}_macro_f1"),
                     "seconds_per_epoch": round(sum(seconds) / len(seconds), 4)})
    table = [f"| {setting} | valid accuracy | valid macro-F1 | test accuracy | test macro-F1 "
             "| seconds per epoch |", "|---|---|---|---|---|---|"]
    for row in rows:
        cells = [row[setting], row["valid_accuracy"], row["valid_macro_f1"],
                 row["test_accuracy"], row["test_macro_f1"], row["seconds_per_epoch"]]
        table.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    atomic_write_text(options.out / f"sweep-{sweep}.md", "\n".join(table) + "\n")
    atomic_write_text(options.out / f"sweep-{sweep}.json", json.dumps(rows, indent=2) + "\n")
    console.print("\n".join(table), highlight=False)
    return 0


def run_folds(options: RetrainOptions, dataset: Dataset, command: str, console: Console,
              backbone: Backbone | None = None) -> int:
    """``--folds K``: k-fold figures over train + valid into ``folds.json`` and ``folds.md``."""
    from tagger.crossval import cross_validate, folds_markdown

    if options.folds < 2:
        raise TaggerError(f"--folds {options.folds} needs at least 2 folds")

    def on_epoch(fold: int, record: EpochRecord) -> None:
        console.print(f"fold {fold + 1}/{options.folds} epoch {record.epoch:3d}  "
                      f"loss {record.train_loss:.3f}  valid acc {record.valid_accuracy:.3f}  "
                      f"acc/clip {record.valid_clip_accuracy or 0:.3f}  {record.seconds:.1f}s",
                      highlight=False)

    result = cross_validate(options.train, dataset, options.folds,
                            select_device(options.device), on_epoch, backbone)
    result["command"] = command
    options.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(options.out / "folds.json", json.dumps(result, indent=2) + "\n")
    table = folds_markdown(result, dataset.classes)
    atomic_write_text(options.out / "folds.md", table)
    atomic_write_text(options.out / "config.json", json.dumps(options.to_dict(), indent=2) + "\n")
    console.print(table, highlight=False)
    return 0
