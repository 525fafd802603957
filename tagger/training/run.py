"""``retrain``: data in, a run folder out, for either task, from Python or the CLI.

RUN_DIR gets ``model.safetensors`` + ``model.json`` (usable with ``genre-tag
--weights RUN_DIR`` or ``genre-tag emotion --weights RUN_DIR``), ``metrics.json``,
``config.json`` (everything the run used: ``genre-tag retrain --config
RUN_DIR/config.json`` repeats it) and, for genre models, ``report.md`` and its
pictures. Genre runs can also be a k-fold cross-validation (``crossval.py``)
or a sweep of one setting (``sweep.py``).
"""

from __future__ import annotations

import platform
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tagger.cards import ModelCard, bundled_weights_path
from tagger.datasets.layouts import load_dataset
from tagger.datasets.splits import TRAIN, VALID, Dataset
from tagger.devices import select_device
from tagger.errors import TaggerError
from tagger.models import ARCHITECTURES, build_model, count_parameters
from tagger.tasks import EMOTION, GENRE
from tagger.training.emotion import emotion_card_fields, evaluate_model, train_emotion
from tagger.training.genre import genre_card_fields, genre_evaluation, train_classifier
from tagger.training.loop import Outcome
from tagger.training.options import (
    EmotionOptions,
    GenreOptions,
    RetrainOptions,
    RunResult,
    command_line,
)
from tagger.training.reports import write_report
from tagger.training.run_folder import check_run_folder, clear_run_folder, write_config, write_run
from tagger.training.transfer import (
    EMOTION_START_MODEL,
    Backbone,
    StartingPoint,
    load_backbones,
    starting_point,
)
from tagger.training.vocabulary_run import retrain_vocabulary

# The training split of an emotion run is scored on this many evenly spaced seconds per
# clip (it is large).
TRAIN_EVAL_SECONDS = 8
def load_data(options: RetrainOptions, console: Console, front_end: Any = None,
              skipped: list[str] | None = None) -> Dataset:
    """The run's data, through ``front_end`` when given, with a progress bar; clips that
    cannot be read are reported (and listed in ``skipped``)."""
    layout_options: dict[str, Any] = {"valid_share": options.valid_share,
                                      "seed": options.train.seed,
                                      "cache_dir": options.cache_dir}
    layout = "auto"
    if isinstance(options, GenreOptions):
        layout = options.layout
        # The MFCC network reads the course's MFCC half unless told otherwise.
        layout_options.update(
            features=options.features or ("mfccs" if options.train.architecture == "mfcc-ffn"
                                          else None),
            max_frames=options.max_frames, context=options.context, genres=options.genres)
    if front_end is not None:
        layout_options["front_end"] = front_end
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("reading training data", total=None)

        def on_clip(name: str, error: str | None) -> None:
            if error:
                console.print(f"[yellow]skipped[/] {error}", highlight=False)
                if skipped is not None:
                    skipped.append(error)
            progress.advance(task)

        dataset = load_dataset(options.data, layout, layout_options, on_clip, options.task)
    for split, rows in dataset.splits.items():
        sources = ""
        if rows.clip_sources:
            names = np.array(rows.clip_sources)
            sources = " (" + ", ".join(f"{s} {int((names == s).sum())}"
                                       for s in sorted(set(rows.clip_sources))) + ")"
        console.print(f"{split}: {len(rows)} {dataset.row_unit}s from "
                      f"{len(set(rows.clip_ids.tolist()))} clips{sources}", highlight=False)
    return dataset


def run_card(options: RetrainOptions, dataset: Dataset, outcome: Outcome,
             provenance: dict[str, Any], fields: dict[str, Any],
             evaluation: dict[str, Any], calibration: dict[str, Any] | None = None) -> ModelCard:
    """The card of a run of either task: ``fields`` are the task's (architecture,
    hyper-parameters and its part of ``training``)."""
    seconds = [h.seconds for h in outcome.history]
    return ModelCard(
        name=options.name, task=options.task, classes=dataset.classes,
        architecture=fields["architecture"], hyperparameters=fields["hyperparameters"],
        front_end=dataset.front_end, input_shape=dataset.input_shape,
        training={
            **provenance, **fields["training"],
            "clips": {split: len(s.clip_names) for split, s in dataset.splits.items()},
            "parameters": count_parameters(outcome.model),
            "epochs_run": len(outcome.history),
            "seconds_per_epoch": round(float(np.mean(seconds)), 2),
            "training_seconds": round(float(sum(seconds)), 1),
        },
        evaluation=evaluation, calibration=calibration or {},
    )


def _provenance(options: RetrainOptions, command: str, device: torch.device,
                dataset: Dataset, skipped: list[str]) -> dict[str, Any]:
    return {"data": str(options.data), "command": command, "device": str(device),
            "torch": torch.__version__, "python": platform.python_version(),
            "layout": dataset.layout, **dataset.notes, "skipped_clips": skipped}


def train_genre(options: GenreOptions, dataset: Dataset, command: str, console: Console,
                backbone: Backbone | None = None, skipped: list[str] | None = None) -> RunResult:
    """One genre training run into ``options.out``."""
    device = select_device(options.device)
    config = options.train
    architecture = ARCHITECTURES.get(config.architecture)
    if architecture is not None and architecture.task != GENRE:
        raise TaggerError(f"{config.architecture} is an emotion model",
                          hint="train it with genre-tag retrain --task emotion")
    try:
        build_model(config.architecture, len(dataset.classes), dataset.input_shape,
                    config.hyperparameters)
    except (ValueError, RuntimeError) as error:  # an architecture that does not fit the input
        raise TaggerError(f"cannot build {config.architecture} for inputs of shape "
                          f"{dataset.input_shape}: {error}",
                          hint="genre-tag retrain --list-archs shows each one's settings") \
            from error
    outcome = _with_progress(console, config.architecture, config.epochs, device,
                             lambda on_epoch: train_classifier(config, dataset, device,
                                                               on_epoch, backbone))
    provenance = _provenance(options, command, device, dataset, skipped or [])
    if backbone is not None:
        provenance["init"] = backbone.note
    summary, metrics = genre_evaluation(outcome, config, dataset, device)
    card = run_card(options, dataset, outcome, provenance,
                    genre_card_fields(outcome, config, dataset), summary,
                    {"temperature": metrics["calibration"]["temperature"],
                     "uncertain_below": config.uncertain_below})
    write_run(options, outcome.model, card, {
        **metrics, "history": [asdict(h) for h in outcome.history],
        "kept_epoch": outcome.kept_epoch, "stopped": outcome.stopped})
    if not config.overfit_batch:
        write_report(options.run_dir, outcome, dataset, metrics["evaluation"], device,
                     options.gradcam_examples, options.tsne, config.seed)
    for line in genre_summary(card.evaluation):
        console.print(line, highlight=False)
    return RunResult(options.run_dir, outcome.stopped, card.evaluation)


def genre_summary(evaluation: dict[str, Any]) -> list[str]:
    """A genre run's headline figures, one line each."""
    lines = []
    for split, figures in evaluation.items():
        levels = [k.removesuffix("_accuracy") for k in figures if k.endswith("_accuracy")]
        lines.append(f"{split}: " + ", ".join(
            f"{level.replace('_', ' ')}: accuracy {figures[level + '_accuracy']:.3f}"
            f" (macro-F1 {figures[level + '_macro_f1']:.3f})" for level in levels))
        for source, source_figures in figures.get("sources", {}).items():
            lines.append(f"  {source}: " + ", ".join(
                f"{level.removeprefix('per_').replace('_', ' ')} "
                f"{source_figures[level + '_accuracy']:.3f} "
                f"(F1 {source_figures[level + '_macro_f1']:.3f})"
                for level in ("per_second", "per_clip")))
    calibration = evaluation[VALID]["calibration"]
    lines.append(f"calibration: temperature {calibration['temperature']:.2f}, ECE "
                 f"{calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f}; "
                 f"{calibration['uncertain_share']:.0%} of valid seconds uncertain")
    return lines


def describe_start(start: StartingPoint) -> str:
    """One line on where emotion training starts: the genre model (or scratch) and its
    front end."""
    origin = (f"the backbone of {start.note['model']} ({start.note['path']})"
              if start.backbone is not None else "scratch")
    frames, mels = start.spec.input_shape
    return (f"{start.architecture} from {origin}; inputs {frames} frames x {mels} mel bands, "
            f"context {start.spec.context_segments}")


def train_emotion_run(options: EmotionOptions, start: StartingPoint, command: str,
                      console: Console) -> RunResult:
    """One emotion training run from ``start`` into ``options.out``."""
    device = select_device(options.device)
    config = options.train
    skipped: list[str] = []
    dataset = load_data(options, console, start.spec, skipped)
    console.print(describe_start(start), highlight=False)
    outcome, init = _with_progress(console, start.architecture, config.epochs, device,
                                   lambda on_epoch: train_emotion(config, dataset.splits, start,
                                                                  device, on_epoch))
    evaluation, _ = evaluate_model(outcome.model, config, dataset.splits, device,
                                   seconds_per_clip={TRAIN: TRAIN_EVAL_SECONDS},
                                   embedded=outcome.embedded)
    provenance = {**_provenance(options, command, device, dataset, skipped), "init": init}
    card = run_card(options, dataset, outcome, provenance, emotion_card_fields(config, start),
                    evaluation)
    write_run(options, outcome.model, card, {
        "evaluation": evaluation, "history": [asdict(h) for h in outcome.history],
        "kept_epoch": outcome.kept_epoch, "stopped": outcome.stopped})
    for split in (VALID, TRAIN):
        parts = []
        for target, entry in evaluation[split]["per_target"].items():
            sources = ", ".join(f"{d} {e['spearman']}" for d, e in entry["per_dataset"].items())
            parts.append(f"{target} {entry['spearman']} ({sources})")
        console.print(f"{split} Spearman per clip: " + "; ".join(parts), highlight=False)
    return RunResult(options.run_dir, outcome.stopped, evaluation)


def _with_progress(console: Console, what: str, epochs: int, device: torch.device,
                   training: Any) -> Any:
    """Run ``training(on_epoch)`` with a progress bar and one line per epoch."""
    progress = Progress(TextColumn("training {task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeRemainingColumn(), console=console,
                        transient=True)
    bar = progress.add_task(what, total=epochs)

    def on_epoch(record: Any) -> None:
        console.print(f"{record.describe()}  {record.seconds:.1f}s ({device.type})",
                      highlight=False)
        progress.advance(bar)

    with progress:
        result = training(on_epoch)
    outcome = result[0] if isinstance(result, tuple) else result
    if outcome.stopped != "completed":
        console.print(f"{outcome.stopped}: keeping epoch {outcome.kept_epoch}")
    return result


def retrain(options: GenreOptions | EmotionOptions, sweep: str | None = None,
            console: Console | None = None, overwrite: bool = False) -> RunResult:
    """Train a model of ``options.task`` (once, per fold or per ``sweep`` setting) and write
    its run folder, replacing an earlier run there; a folder holding other files is refused
    unless ``overwrite`` (which leaves those files be). Progress goes to ``console``
    (default: stderr)."""
    console = console or Console(stderr=True)
    check_run_folder(options.run_dir, overwrite)
    if options.threads:
        torch.set_num_threads(options.threads)
    if isinstance(options, EmotionOptions):
        options = replace(options, genre_weights=options.genre_weights
                          or bundled_weights_path(EMOTION_START_MODEL))
        start = starting_point(options.train.init, options.genre_weights)
        result = train_emotion_run(options, start, command_line(options), console)
    else:
        result = _retrain_genre(options, sweep, console)
    if result.stopped != "interrupted":
        weights_for = "genre-tag emotion" if options.task == EMOTION else "genre-tag"
        console.print(f"run folder: {result.out}  (use it with: {weights_for} --weights "
                      f"{result.out} SONG)", highlight=False)
    return result


def _retrain_genre(options: GenreOptions, sweep: str | None, console: Console) -> RunResult:
    from tagger.training.crossval import run_folds
    from tagger.training.sweep import check_sweep, run_sweep

    check_sweep(options, sweep)
    if options.layout == "vocabulary":
        if sweep is not None:
            raise TaggerError("--format vocabulary trains one recipe, not a --sweep")
        return retrain_vocabulary(options, console)
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
    command = command_line(options)
    skipped: list[str] = []
    dataset = load_data(options, console, backbone.front_end if backbone else None, skipped)
    if options.folds:
        return run_folds(options, dataset, command, console, backbone)
    if sweep is not None:
        clear_run_folder(options.run_dir)
        write_config(options)
        return run_sweep(options, dataset, command, sweep, console,
                         lambda run, note: train_genre(run, dataset, f"{command} ({note})",
                                                       console, backbone, skipped))
    return train_genre(options, dataset, command, console, backbone, skipped)

