"""The ``genre-tag`` command: a thin click layer over the library.

Heavy imports (torch, PyAV, matplotlib) happen inside the commands, so
``genre-tag --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from tagger import __version__
from tagger.datasets import LAYOUTS
from tagger.errors import TaggerError, TaggerWarning
from tagger.library.genres import DEFAULT_MAX_GENRES, DEFAULT_MIN_SHARE
from tagger.tasks import GENRE, TASKS
from tagger.training.options import (
    BATCH_SIZE,
    DEFAULT_ARCHITECTURE,
    OPTIMIZERS,
    SCHEDULERS,
    SELECTIONS,
    SWEEPS,
)

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
DEFAULT_COMMAND = "tag"


class Quantity(click.ParamType):
    """A number with an optional unit: a duration (90m, 2h) or a size (500MB, 2GB)."""

    def __init__(self, name: str, units: dict[str, float], examples: str) -> None:
        self.name = name
        self.units = units
        self.examples = examples

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", str(value).lower())
        if match is None or match.group(2) not in self.units:
            self.fail(f"{value!r} is not a {self.name} such as {self.examples}", param, ctx)
        return float(match.group(1)) * self.units[match.group(2)]


DURATION = Quantity("duration", {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}, "45s, 90m or 2h")
SIZE = Quantity("size", {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9,
                         "gb": 1e9}, "500MB or 2GB")


def check_browser(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Validate ``--cookies-from-browser`` the way yt-dlp reads it."""
    if value is None:
        return None
    from tagger.download import browser_cookie_source

    try:
        browser_cookie_source(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from error
    return value


def check_smoothing(ctx: click.Context, param: click.Parameter, value: int) -> int:
    """Validate ``--smooth``: 0 or an odd number of seconds."""
    from tagger.results import check_smoothing_window

    try:
        check_smoothing_window(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from error
    return value


class DefaultCommandGroup(click.Group):
    """Runs ``tag`` when the first argument is not a sub-command: ``genre-tag song.mp3``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "--version"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


def fail(message: str) -> NoReturn:
    """Print ``message`` as one line on stderr (whatever names it holds) and exit."""
    from tagger.names import printable

    click.echo(f"genre-tag: error: {printable(message)}", err=True)
    sys.exit(EXIT_FAILED)


def run_reporting_errors(debug: bool, action: Callable[[], int]) -> None:
    """Run ``action``; expected failures become one line on stderr and a non-zero exit, and
    genre-tag's warnings one line each (the run goes on)."""
    from tagger.names import printable

    python_show_warning = warnings.showwarning

    def show_warning(message: Warning | str, category: type[Warning], *where: Any) -> None:
        if issubclass(category, TaggerWarning):  # print(): lands above a progress bar
            print(f"genre-tag: warning: {printable(str(message))}", file=sys.stderr)
        else:
            python_show_warning(message, category, *where)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", TaggerWarning)
            warnings.showwarning = show_warning
            status = action()
    except TaggerError as error:
        if debug:
            raise
        fail(error.message)
    except KeyboardInterrupt:
        click.echo("genre-tag: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(status)


@click.group(cls=DefaultCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genre-tag")
def main() -> None:
    """Per-second music genre timelines.

    \b
    genre-tag song.mp3                 timeline in the terminal + song summary
    genre-tag song.mp3 --png song.png  the same as a picture
    genre-tag ~/Music --json tags.jsonl
    genre-tag --url URL                any site yt-dlp supports, playlists too
    genre-tag emotion song.mp3         valence, energy, danceability over time
    genre-tag retrain --data DIR       train a model on your own folders
    genre-tag cache info|clear         the download and results caches

    Run 'genre-tag tag --help' for every tagging option.
    """


device_option = click.option(
    "--device", default="auto", show_default=True,
    type=click.Choice(["auto", "cpu", "cuda", "mps"], case_sensitive=False),
    help="Where the model runs; auto picks CUDA, then Apple MPS, then the CPU.",
)
debug_option = click.option("--debug", is_flag=True, help="Show tracebacks of failures.")


def tagging_options(what: str, weights_from: str) -> Callable[[Callable], Callable]:
    """The inputs, URL, output and model options that ``tag`` and ``emotion`` share."""
    options = [
        click.argument("paths", nargs=-1, type=click.Path(path_type=Path)),
        click.option("--url", "urls", multiple=True, metavar="URL",
                     help="Tag the audio of a web page yt-dlp supports, or every entry of a "
                          "playlist or channel page (repeatable)."),
        click.option("--max-items", type=click.IntRange(1), metavar="N",
                     help="Tag at most the first N entries of each playlist or channel --url."),
        click.option("--max-duration", default="2h", show_default=True, type=DURATION,
                     metavar="TIME", help="Refuse --url recordings longer than TIME (45s, 90m, "
                                          "2h; 0: no limit), or stop downloading a stream that "
                                          "passes it."),
        click.option("--max-size", default="1GB", show_default=True, type=SIZE, metavar="SIZE",
                     help="Stop a --url download that grows past SIZE (0: no limit)."),
        click.option("--cookies", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     metavar="FILE",
                     help="Netscape cookies.txt for --url videos that need signing in "
                          "(age-restricted, members-only); read, never written."),
        click.option("--cookies-from-browser", metavar="NAME", callback=check_browser,
                     help="Use the cookies of a browser you are signed in with (firefox, "
                          "chrome, edge, safari, ...; or "
                          "BROWSER[+KEYRING][:PROFILE][::CONTAINER])."),
        click.option("--cache-max", default="2GB", show_default=True, type=SIZE, metavar="SIZE",
                     help="Size cap of the download cache; the least recently used downloads go."),
        click.option("--png", "png_path", type=click.Path(path_type=Path), metavar="FILE",
                     help=f"Write the {what} as a PNG (a folder when several songs are tagged)."),
        click.option("--json", "json_path", metavar="FILE",
                     help="Write per-second results as JSON (JSON Lines for several songs); "
                          "- is stdout."),
        click.option("--csv", "csv_path", metavar="FILE",
                     help="Write one CSV row per second; - is stdout."),
        click.option("--quiet", "-q", is_flag=True, help=f"No {what} in the terminal."),
        click.option("--weights", type=click.Path(path_type=Path), metavar="CKPT",
                     help=f"A checkpoint made by '{weights_from}', or a bundled model by "
                          "name (e.g. genre-sources11, faster), instead of the default."),
        click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1),
                     help="Seconds per forward pass."),
        click.option("--jobs", "-j", type=click.IntRange(1), metavar="N", envvar="GENRE_TAG_JOBS",
                     help="Songs analysed at once, each in a worker process. [default: the "
                          "CPUs genre-tag may use; env GENRE_TAG_JOBS]"),
        click.option("--no-cache", is_flag=True,
                     help="Analyse every song again instead of reading the results cache "
                          "(new results are still stored)."),
        device_option,
        debug_option,
    ]

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def tag_request(given: dict[str, Any]) -> Any:
    """A ``TagRequest`` from the shared options (``given`` is consumed)."""
    from tagger.download import DownloadSettings
    from tagger.runner import TagRequest

    if not given["paths"] and not given["urls"]:
        raise click.UsageError("give at least one audio file, folder or --url")
    if given["json_path"] == given["csv_path"] == "-":
        raise click.UsageError("--json - and --csv - would mix on standard output: write one "
                               "of them to a file")
    download = DownloadSettings(
        cache_max_bytes=int(given.pop("cache_max")), max_items=given.pop("max_items"),
        max_duration=given.pop("max_duration") or None,
        max_bytes=int(given.pop("max_size")) or None, cookies=given.pop("cookies"),
        cookies_from_browser=given.pop("cookies_from_browser"),
    )
    given.pop("debug")
    use_cache = not given.pop("no_cache")
    return TagRequest(**{**given, "paths": list(given["paths"]), "urls": list(given["urls"])},
                      download=download, use_cache=use_cache)


LIBRARY_FLAGS = ("dry_run", "overwrite", "touch", "min_share", "max_genres", "force_uncertain",
                 "tag_format", "write_emotion", "report")


def library_options(command: Callable) -> Callable:
    """The options of writing genres into the files (``tagger.library``); the command gets
    them as one ``library`` argument: a ``LibraryOptions``."""
    options = [
        click.option("--write-tags", is_flag=True,
                     help="Write each song's genres into its file's own tag (files and "
                          "folders only)."),
        click.option("--restore-tags", is_flag=True,
                     help="Put back the genre (and emotion) each file had before genre-tag "
                          "first wrote to it; no analysis."),
        click.option("--dry-run", is_flag=True,
                     help="Show 'file: existing -> proposed' and write nothing."),
        click.option("--overwrite", is_flag=True,
                     help="Also replace genres set by hand or by other tools."),
        click.option("--touch", is_flag=True,
                     help="Give written files a new modification time (default: kept)."),
        click.option("--min-share", default=DEFAULT_MIN_SHARE, show_default=True,
                     type=click.FloatRange(0, 1), metavar="P",
                     help="Also write genres that win this share of the seconds."),
        click.option("--max-genres", default=DEFAULT_MAX_GENRES, show_default=True,
                     type=click.IntRange(1), metavar="K", help="Write at most K genres per song."),
        click.option("--force-uncertain", is_flag=True,
                     help="Write a genre even when the song's top genre is below the model's "
                          "uncertain threshold."),
        click.option("--tag-format", default="names", show_default=True, metavar="FORMAT",
                     help="How genres are spelled: names (Hip-Hop), model (hiphop), or a JSON "
                          "file mapping classes to names."),
        click.option("--write-emotion", is_flag=True,
                     help="Also write valence, energy, danceability and a mood word."),
        click.option("--report", type=click.Path(path_type=Path), metavar="FILE",
                     help="Write a JSON line per file: proposed genres, confidences, what was "
                          "written."),
    ]

    def with_library(write_tags: bool, restore_tags: bool, **given: Any) -> None:
        chosen = {flag: given.pop(flag) for flag in LIBRARY_FLAGS}
        command(library=LibraryOptions(write_tags, restore_tags, **chosen), **given)

    functools.update_wrapper(with_library, command)
    for option in reversed(options):
        with_library = option(with_library)
    return with_library


@dataclass(frozen=True)
class LibraryOptions:
    write_tags: bool
    restore_tags: bool
    dry_run: bool
    overwrite: bool
    touch: bool
    min_share: float
    max_genres: int
    force_uncertain: bool
    tag_format: str
    write_emotion: bool
    report: Path | None

    def check(self, ctx: click.Context, request: Any) -> None:
        """Refuse options that only make sense with --write-tags or --restore-tags."""
        if self.write_tags and self.restore_tags:
            raise click.UsageError("give --write-tags or --restore-tags, not both")
        if not (self.write_tags or self.restore_tags):
            given = [f"--{flag.replace('_', '-')}" for flag in LIBRARY_FLAGS
                     if ctx.get_parameter_source(flag) is click.core.ParameterSource.COMMANDLINE]
            if given:
                raise click.UsageError(f"{given[0]} is for --write-tags (or --restore-tags)")
        elif request.urls:
            raise click.UsageError("--write-tags and --restore-tags work on files and folders, "
                                   "not --url downloads")

    def action(self, request: Any) -> Callable[[], int]:
        def run() -> int:
            from tagger.library.genres import GenrePolicy, tag_names
            from tagger.library.workflow import run_restore_tags, run_write_tags
            from tagger.library.write import WriteSettings

            policy = GenrePolicy(self.min_share, self.max_genres, self.force_uncertain,
                                 tag_names(self.tag_format))
            settings = WriteSettings(policy, self.dry_run, self.overwrite, self.touch,
                                     self.write_emotion)
            if self.restore_tags:
                return run_restore_tags(request.paths, settings, self.report)
            return run_write_tags(request, settings, self.report)

        return run


@main.command("tag")
@tagging_options("timeline and summary", "genre-tag retrain")
@click.option("--top", default=3, show_default=True, type=click.IntRange(1),
              help="How many genres the song summary lists.")
@click.option("--uncertain-below", type=click.FloatRange(0, 1), metavar="P",
              help="Mark seconds whose top genre probability is below P as uncertain (0: "
                   "never). [default: the model's calibration; 0 for uncalibrated models]")
@click.option("--smooth", "smooth_seconds", default=0, show_default=True, type=click.IntRange(0),
              metavar="N", callback=check_smoothing,
              help="Average each second's probabilities over a centred window of N seconds "
                   "(odd; silent seconds left out) before marking uncertain ones; 0: off.")
@library_options
def tag_command(library: LibraryOptions, debug: bool, **given: Any) -> None:
    """Tag audio files, folders (recursively) and URLs, second by second; with --write-tags,
    write the genres into the files."""
    request = tag_request({**given, "debug": debug})
    library.check(click.get_current_context(), request)
    if library.write_tags or library.restore_tags:
        run_reporting_errors(debug, library.action(request))
    from tagger.runner import run_tagging

    run_reporting_errors(debug, lambda: run_tagging(request))


@main.command("emotion")
@tagging_options("sparklines and song values", "genre-tag retrain --task emotion")
def emotion_command(debug: bool, **given: Any) -> None:
    """Valence, energy and danceability (0-1) per second and per song."""
    request = tag_request({**given, "debug": debug})
    from tagger.runner import run_emotion

    run_reporting_errors(debug, lambda: run_emotion(request))


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
    from tagger.checkpoints import bundled_weights_path
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


@main.command("retrain")
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
              help="Data layout (default auto: detected from the files).")
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
                   "lowpass=P (repeatable; see the README).")
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
    if list_archs:
        list_architectures()
        return
    from tagger.training.options import options_from_dict, read_config, settings_of
    from tagger.training.run import retrain

    def action() -> int:
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
        from tagger.checkpoints import bundled_weights_path
        from tagger.devices import select_device

        return (self.weights or bundled_weights_path(), self.data, self.layout,
                {"valid_share": self.valid_share, "seed": self.seed,
                 "cache_dir": self.cache_dir}, select_device(self.device))


@main.command("evaluate")
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


@main.command("calibrate")
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
        from tagger.training.evaluate import calibrate_checkpoint, resolve_output_path

        report = calibrate_checkpoint(*labelled.arguments(), uncertain_below, out, split, name)
        click.echo(f"temperature {report['temperature']:.3f}: ECE {report['ece_before']:.3f} -> "
                   f"{report['ece_after']:.3f} on {report['seconds']} seconds; "
                   f"{report['uncertain_share']:.0%} uncertain below {uncertain_below}")
        click.echo(f"calibrated checkpoint: {resolve_output_path(out)}")
        return 0

    run_reporting_errors(debug, action)


CACHES = ("downloads", "results")


@main.group("cache")
def cache_group() -> None:
    """The download cache of --url and the results cache of every run, in the user cache
    folder."""


@cache_group.command("info")
@debug_option
def cache_info_command(debug: bool) -> None:
    """Show where the caches are and how much they hold."""
    from tagger.download import cache_usage
    from tagger.results_cache import DEFAULT_RESULTS_CACHE_MAX_BYTES, results_cache_usage

    def info() -> int:
        usage = cache_usage()
        click.echo(f"downloads: {usage.folder}: {usage.files} files, {usage.size / 1e6:.1f} MB "
                   "(capped per run by --cache-max, default 2 GB)")
        results = results_cache_usage()
        click.echo(f"results: {results.path}: {results.songs} song results, "
                   f"{results.size / 1e6:.1f} MB (capped at "
                   f"{DEFAULT_RESULTS_CACHE_MAX_BYTES / 1e9:g} GB)")
        return 0

    run_reporting_errors(debug, info)


@cache_group.command("clear")
@click.argument("which", required=False, type=click.Choice(CACHES))
@debug_option
def cache_clear_command(which: str | None, debug: bool) -> None:
    """Delete the cached downloads and song results (or only WHICH)."""
    from tagger.download import clear_cache
    from tagger.results_cache import clear_results_cache

    def clear() -> int:
        if which in (None, "downloads"):
            removed = clear_cache()
            click.echo(f"removed {removed.files} files ({removed.size / 1e6:.1f} MB) "
                       f"from {removed.folder}")
        if which in (None, "results"):
            cleared = clear_results_cache()
            click.echo(f"removed {cleared.songs} song results ({cleared.size / 1e6:.1f} MB) "
                       f"from {cleared.path}")
        return 0

    run_reporting_errors(debug, clear)
