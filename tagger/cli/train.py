"""``genre-tag retrain``, ``evaluate`` and ``calibrate``: options parsed here, the work done by
``tagger.training``."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from tagger.cli.common import debug_option, device_option, run_reporting_errors
from tagger.cli.interrupts import EXIT_INTERRUPTED
from tagger.datasets import LAYOUTS
from tagger.tasks import GENRE, TASKS
from tagger.training.options import (
    BATCH_SIZE,
    DEFAULT_ARCHITECTURE,
    OPTIMIZERS,
    SCHEDULERS,
    SELECTIONS,
    SWEEPS,
)


def parse_hyperparameters(pairs: tuple[str, ...], option: str = "--hparam") -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are JSON (``channels=[16,32]``, ``pooling=false``) or text."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        try:
            parsed[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.strip()] = value
    return parsed


def list_architectures() -> None:
    from tagger.cards import bundled_weights_path
    from tagger.models import ARCHITECTURES, architecture_defaults, build_model, count_parameters

    bundled: dict[str, list[str]] = {}
    for card in sorted(bundled_weights_path().parent.glob("*.json")):
        bundled.setdefault(json.loads(card.read_text())["architecture"], []).append(card.stem)
    width = max(map(len, ARCHITECTURES))
    for name, architecture in ARCHITECTURES.items():
        shape = (26,) if name == "mfcc-ffn" else (21, 128)
        try:
            parameters = f"{count_parameters(build_model(name, 10, shape, {})):>9,}"
        except ValueError:  # built only from its settings (joint: from its members)
            parameters = f"{'-':>9}"
        settings = " ".join(f"{k}={json.dumps(v, separators=(',', ':'))}"
                            for k, v in architecture_defaults(name).items())
        shipped = f" (bundled: {', '.join(bundled[name])})" if name in bundled else ""
        click.echo(f"{name:<{width}} input {' x '.join(map(str, shape)):<9} {parameters} "
                   f"parameters  {architecture.summary}{shipped}")
        click.echo(f"{'':<{width}} settings: {settings}" if settings
                   else f"{'':<{width}} (no settings)")
    click.echo("Change a setting with --hparam KEY=VALUE. Parameters are counted for 10 classes; "
               "2-D models adapt to any input shape.")


@click.command("retrain")
@click.option("--data", type=click.Path(path_type=Path),
              help="Training data: a folder in one of the layouts of --format.")
@click.option("--task", type=click.Choice(TASKS),
              help="emotion: valence/energy/danceability from 4Q, Emotify or NTUA data, "
                   "fine-tuned from a genre model (--genre-weights). Options that do not "
                   "apply to the task are refused. [default: genre, or the --config run's]")
@click.option("--genre-weights", type=click.Path(path_type=Path), metavar="CKPT",
              help="emotion: the genre checkpoint (genre-cnn, tf-cnn, musicnn or joint) whose "
                   "backbone, settings and front end the emotion model starts from; musicnn "
                   "backbones stay frozen. [default: the bundled genre-musicnn11]")
@click.option("--init-weights", type=click.Path(path_type=Path), metavar="CKPT", multiple=True,
              help="genre: start from this checkpoint (or bundled model, e.g. musicnn-msd): "
                   "its architecture, settings, front end and weights; the head is new. "
                   "Given twice or more: the backbones side by side (same front end), one "
                   "head on their joined embeddings.")
@click.option("--freeze-backbone", is_flag=True, default=None,
              help="With --init-weights: train only the head, on embeddings computed once "
                   "(masks and augmentations do not apply).")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Repeat a run from its RUN_DIR/config.json (options given here override it).")
@click.option("--format", "layout", type=click.Choice(["auto", *LAYOUTS]),
              help="Data layout (default auto: detected from the files). vocabulary: the "
                   "17-genre model from a folder holding gtzan/, emotify/ and 4q/ (the "
                   "bundled genre-musicnn17's recipe; see docs/genre-vocabulary.md).")
@click.option("--features", help="course: melgrams or mfccs; ntua: mel, chroma or fused.")
@click.option("--arch", "architecture", metavar="NAME",
              help=f"Architecture (default {DEFAULT_ARCHITECTURE}); see --list-archs.")
@click.option("--hparam", "hparams", multiple=True, metavar="KEY=VALUE",
              help="An architecture setting, e.g. pooling=false (repeatable).")
@click.option("--dropout", type=click.FloatRange(0, 1), help="Shortcut for --hparam dropout=P.")
@click.option("--activation", help="Shortcut for --hparam activation=NAME.")
@click.option("--epochs", type=click.IntRange(1), help="[default: 30; emotion: 12]")
@click.option("--batch-size", type=click.IntRange(1), help=f"[default: {BATCH_SIZE}]")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), help="[default: adamw]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="[default: 0.001]")
@click.option("--momentum", type=click.FloatRange(0, 1), help="SGD/RMSprop. [default: 0.9]")
@click.option("--weight-decay", type=click.FloatRange(min=0), help="[default: 0.01]")
@click.option("--scheduler", type=click.Choice(SCHEDULERS), help="[default: onecycle]")
@click.option("--patience", type=click.IntRange(0),
              help="Early stopping after P epochs without improvement (0: off). [default: 0]")
@click.option("--select", type=click.Choice(SELECTIONS),
              help="Keep the last epoch, or the best by validation macro-F1 or loss. "
                   "[default: last]")
@click.option("--label-smoothing", type=click.FloatRange(0, 1), help="[default: 0.1]")
@click.option("--class-weights/--no-class-weights", default=None,
              help="Weigh the loss by inverse class frequency. [default: on]")
@click.option("--freq-mask", type=click.IntRange(0),
              help="SpecAugment: mask up to N feature bins (0: off). [default: 16]")
@click.option("--time-mask", type=click.IntRange(0),
              help="SpecAugment: mask up to N frames (0: off). [default: 3]")
@click.option("--augment", "augments", multiple=True, metavar="NAME=VALUE",
              help="A spectrogram augmentation: mix=P, tempo=R, pitch=BANDS, tilt=DB, "
                   "lowpass=P (repeatable; see docs/retraining.md).")
@click.option("--epoch-rows", type=click.IntRange(0),
              help="Draw N seconds per epoch, balanced by genre and clip (0: every second "
                   "once, class-weighted loss). [default: 0]")
@click.option("--context", type=click.IntRange(0),
              help="audio/sources: neighbouring seconds on each side that every prediction "
                   "also sees. [default: 0]")
@click.option("--genres", callback=lambda ctx, param, value: (
                  [g.strip() for g in value.split(",") if g.strip()] if value else None),
              metavar="LIST", help="sources: keep only these genres (comma-separated).")
@click.option("--uncertain-below", type=click.FloatRange(0, 1),
              help="Calibrated top probability under which a second is uncertain. "
                   "[default: 0.35]")
@click.option("--min-precision", type=click.FloatRange(0, 1),
              help="--format vocabulary: each genre's threshold is the F1-optimal one among "
                   "those right at least this often out of fold; a genre none reaches is "
                   "never given. [default: 0]")
@click.option("--unfamiliar-share", type=click.FloatRange(0, 0.5),
              help="--format vocabulary: the share of known songs (out of fold) left "
                   "without a genre as unfamiliar; sets the card's familiarity level, under "
                   "which a song's music fits no genre (0: no such level). [default: 0]")
@click.option("--balance-power", type=click.FloatRange(0, 2),
              help="--format vocabulary: a genre's clips weigh (its clip count) ** -P in each "
                   "epoch's draw (1: every genre the same, 0.5: by the square root). "
                   "[default: 1]")
@click.option("--seed", type=int, help="[default: 0]")
@click.option("--valid-share", type=click.FloatRange(0, 1),
              help="audio/ntua: share of clips per genre held out when no split is given.")
@click.option("--max-frames", type=click.IntRange(1), help="ntua: frames per clip.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Run folder. [default: runs/TASK]")
@click.option("--name", help="The model's name. [default: TASK-model]")
@click.option("--threads", type=click.IntRange(0), help="CPU threads for torch (0: default).")
@click.option("--cache-dir", type=click.Path(path_type=Path),
              help="Where extracted melgrams are cached (default: the user cache folder).")
@click.option("--gradcam-examples", type=click.IntRange(0),
              help="Grad-CAM maps per class for right and for wrong predictions. [default: 2]")
@click.option("--tsne", is_flag=True, default=None,
              help="Also plot a t-SNE of embeddings (needs scikit-learn).")
@click.option("--overfit-batch", is_flag=True, default=None,
              help="Train on one batch only: the check that a model can fit it.")
@click.option("--folds", type=click.IntRange(0),
              help="k-fold cross-validation over train + valid (by artist where known) "
                   "instead of one run: writes folds.md and folds.json. [default: 0]")
@click.option("--sweep", type=click.Choice(SWEEPS),
              help="Train once per setting and write a comparison table.")
@click.option("--overwrite", is_flag=True,
              help="Write the run into an --out folder that holds other files (they stay; "
                   "an earlier run's files are always replaced).")
@click.option("--list-archs", is_flag=True, help="List the architectures and exit.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"], case_sensitive=False),
              help="Where training runs. [default: auto]")
@debug_option
@click.pass_context
def retrain_command(ctx: click.Context, task: str | None, config_path: Path | None,
                    hparams: tuple[str, ...], augments: tuple[str, ...],
                    dropout: float | None, activation: str | None,
                    sweep: str | None, overwrite: bool, list_archs: bool, debug: bool,
                    **given: Any) -> None:
    """Train and evaluate a model; write a run folder usable with --weights."""
    from tagger.devices import require_torch

    if list_archs:
        def list_them() -> int:
            require_torch("genre-tag retrain --list-archs")
            list_architectures()
            return 0

        run_reporting_errors(debug, list_them)  # exits

    def action() -> int:
        require_torch("genre-tag retrain")
        from tagger.training.options import options_from_dict, read_config, settings_of
        from tagger.training.run import retrain

        base = read_config(config_path) if config_path else {}
        base["task"] = chosen = task or base.get("task", GENRE)
        run_settings, train_settings = settings_of(chosen)
        explicit = {k: v for k, v in {**given, "sweep": sweep}.items()
                    if ctx.get_parameter_source(k) is click.core.ParameterSource.COMMANDLINE}
        allowed = run_settings | train_settings | ({"sweep"} if chosen == GENRE else set())
        for key in [*explicit, *(["augment"] if augments else [])]:
            if key not in allowed:
                other = next(t for t in TASKS if t != chosen)
                flag = next(p.opts[0] for p in ctx.command.params if p.name in (key, key + "s"))
                raise click.UsageError(f"{flag} is for --task {other}, not {chosen}")
        base.setdefault("train", {})
        for key, value in explicit.items():
            if key in train_settings:
                base["train"][key] = value
            elif key != "sweep":
                base[key] = value
        extra = parse_hyperparameters(hparams)
        extra.update({k: v for k, v in (("dropout", dropout), ("activation", activation))
                      if v is not None})
        base["train"]["hyperparameters"] = {**base["train"].get("hyperparameters", {}), **extra}
        if augments:
            base["train"]["augment"] = {**base["train"].get("augment", {}),
                                        **parse_hyperparameters(augments, "--augment")}
        if not base.get("data"):
            raise click.UsageError("give --data DIR (or --config RUN_DIR/config.json)")
        try:
            options = options_from_dict(base)
        except (TypeError, ValueError) as error:
            raise click.UsageError(str(error)) from error
        stopped = retrain(options, sweep, overwrite=overwrite).stopped
        return EXIT_INTERRUPTED if stopped == "interrupted" else 0

    run_reporting_errors(debug, action)


def labelled_data_options(what: str) -> Callable[[Callable], Callable]:
    """The data, checkpoint and split options that ``evaluate`` and ``calibrate`` share; the
    command gets them as one ``LabelledData`` argument, ``labelled``."""
    options = [
        click.option("--data", required=True, type=click.Path(path_type=Path),
                     help="Labelled audio the model was not trained on: a GENRE/ folder "
                          "layout or a folder of datasets (sources)."),
        click.option("--weights", type=click.Path(path_type=Path), metavar="CKPT",
                     help=f"The checkpoint to {what} (default: the bundled genre model)."),
        click.option("--format", "layout", type=click.Choice(["auto", "audio", "sources"]),
                     default="auto", show_default=True, help="Data layout."),
        click.option("--valid-share", default=0.2, show_default=True,
                     type=click.FloatRange(0, 1),
                     help="As in retrain: the share held out when the data fixes no split."),
        click.option("--seed", default=0, show_default=True, type=int,
                     help="As in retrain: the seed of the split when the data fixes none."),
        click.option("--cache-dir", type=click.Path(path_type=Path),
                     help="Where extracted melgrams are cached (default: the user cache "
                          "folder)."),
        device_option,
        debug_option,
    ]

    def decorate(command: Callable) -> Callable:
        def with_labelled(data: Path, weights: Path | None, layout: str, valid_share: float,
                          seed: int, cache_dir: Path | None, device: str,
                          **given: Any) -> None:
            command(labelled=LabelledData(data, weights, layout, valid_share, seed,
                                          cache_dir, device), **given)

        # The docstring is the command's help; the options declared below the decorator
        # (click's __click_params__) come along with the function's __dict__.
        functools.update_wrapper(with_labelled, command)
        for option in reversed(options):
            with_labelled = option(with_labelled)
        return with_labelled

    return decorate


@dataclass(frozen=True)
class LabelledData:
    data: Path
    weights: Path | None
    layout: str
    valid_share: float
    seed: int
    cache_dir: Path | None
    device: str

    def arguments(self) -> tuple[Path, Path, str, dict[str, Any], Any]:
        """The checkpoint, data, layout, layout options and device of the library calls."""
        from tagger.cards import bundled_weights_path
        from tagger.devices import select_device

        return (self.weights or bundled_weights_path(), self.data, self.layout,
                {"valid_share": self.valid_share, "seed": self.seed,
                 "cache_dir": self.cache_dir}, select_device(self.device))


@click.command("evaluate")
@labelled_data_options("measure")
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "valid"]),
              default=("valid",), show_default=True, help="Which split(s) to measure.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), metavar="FILE",
              help="Also write every figure and confusion matrix as JSON.")
def evaluate_command(labelled: LabelledData, splits: tuple[str, ...], json_path: Path | None,
                     debug: bool) -> None:
    """Measure a genre model on labelled audio: accuracy and macro-F1 per second and per
    clip, per source, and the calibration error."""
    def action() -> int:
        from tagger.atomic import atomic_write_text
        from tagger.devices import require_torch

        require_torch("genre-tag evaluate")
        from tagger.training.evaluate import evaluate_checkpoint

        result = evaluate_checkpoint(*labelled.arguments(), splits)
        for split, figures in result["splits"].items():
            click.echo(f"{result['model']} on {split} (ECE {figures['summary']['ece']:.3f}):")
            for level, entry in figures["summary"].items():
                if level != "ece":
                    click.echo(f"  {level.replace('_', ' '):<22} accuracy {entry['accuracy']:.3f}"
                               f"  macro-F1 {entry['macro_f1']:.3f}  n {entry['n']}")
            for genre, seconds in figures["genres_unknown_to_model"].items():
                click.echo(f"  left out: {seconds} seconds of {genre} (not a genre of the model)")
        if json_path:
            atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
        return 0

    run_reporting_errors(debug, action)


@click.command("calibrate")
@labelled_data_options("calibrate")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Where the calibrated checkpoint goes: a .safetensors file or a folder.")
@click.option("--uncertain-below", default=0.35, show_default=True,
              type=click.FloatRange(0, 1), metavar="P",
              help="Calibrated top probability under which a second is uncertain.")
@click.option("--split", type=click.Choice(["train", "valid"]), default="valid",
              show_default=True, help="Which split to fit the temperature on.")
@click.option("--name", help="The calibrated model's name (default: the original's).")
def calibrate_command(labelled: LabelledData, out: Path, uncertain_below: float, split: str,
                      name: str | None, debug: bool) -> None:
    """Fit a genre model's temperature (and set its uncertain threshold) on labelled audio;
    write the calibrated copy to --out. The input checkpoint is not changed."""
    def action() -> int:
        from tagger.devices import require_torch

        require_torch("genre-tag calibrate")
        from tagger.training.evaluate import calibrate_checkpoint, resolve_output_path

        report = calibrate_checkpoint(*labelled.arguments(), uncertain_below, out, split, name)
        click.echo(f"temperature {report['temperature']:.3f}: ECE {report['ece_before']:.3f} -> "
                   f"{report['ece_after']:.3f} on {report['seconds']} seconds; "
                   f"{report['uncertain_share']:.0%} uncertain below {uncertain_below}")
        click.echo(f"calibrated checkpoint: {resolve_output_path(out)}")
        return 0

    run_reporting_errors(debug, action)
