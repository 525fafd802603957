"""The ``genre-tag`` command: a thin click layer over the library.

Heavy imports (torch, PyAV, matplotlib) happen inside the commands, so
``genre-tag --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from tagger import __version__
from tagger.errors import TaggerError

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
DEFAULT_COMMAND = "tag"


class DefaultCommandGroup(click.Group):
    """Runs ``tag`` when the first argument is not a sub-command: ``genre-tag song.mp3``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "--version"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


def canonical_command(name: str, ctx: click.Context) -> str:
    """The command with every option spelled out, so a run can be repeated exactly."""
    words = ["genre-tag", name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if not isinstance(param, click.Option) or value is None or param.name == "debug":
            continue
        flag = param.opts[0]
        if param.is_flag:
            words += [flag] if value else []
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def fail(message: str) -> NoReturn:
    click.echo(f"genre-tag: error: {message}", err=True)
    sys.exit(EXIT_FAILED)


def run_reporting_errors(debug: bool, action: Callable[[], int]) -> None:
    """Run ``action``; expected failures become one line on stderr and a non-zero exit."""
    try:
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
    genre-tag --url URL                any site yt-dlp supports
    genre-tag emotion song.mp3         valence, energy, danceability over time
    genre-tag retrain --data DIR       train a model on your own folders

    Run 'genre-tag tag --help' for every tagging option.
    """


device_option = click.option(
    "--device", default="auto", show_default=True,
    type=click.Choice(["auto", "cpu", "cuda", "mps"], case_sensitive=False),
    help="Where the model runs; auto picks CUDA, then Apple MPS, then the CPU.",
)
debug_option = click.option("--debug", is_flag=True, help="Show tracebacks of failures.")


@main.command("tag")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="Tag the audio of a web page yt-dlp supports (repeatable).")
@click.option("--png", "png_path", type=click.Path(path_type=Path), metavar="FILE",
              help="Write the timeline as a PNG (a folder when several songs are tagged).")
@click.option("--json", "json_path", metavar="FILE",
              help="Write per-second results as JSON (JSON Lines for several songs); - is stdout.")
@click.option("--csv", "csv_path", metavar="FILE",
              help="Write one CSV row per second; - is stdout.")
@click.option("--top", default=3, show_default=True, type=click.IntRange(1),
              help="How many genres the song summary lists.")
@click.option("--quiet", "-q", is_flag=True, help="No timeline or summary in the terminal.")
@click.option("--weights", type=click.Path(path_type=Path), metavar="CKPT",
              help="A checkpoint made by 'genre-tag retrain' instead of the bundled model.")
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(1),
              help="Seconds per forward pass.")
@device_option
@debug_option
def tag_command(paths: tuple[Path, ...], urls: tuple[str, ...], png_path: Path | None,
                json_path: str | None, csv_path: str | None, top: int, quiet: bool,
                weights: Path | None, batch_size: int, device: str, debug: bool) -> None:
    """Tag audio files, folders (recursively) and URLs, second by second."""
    if not paths and not urls:
        raise click.UsageError("give at least one audio file, folder or --url")
    from tagger.runner import TagRequest, run_tagging

    request = TagRequest(
        paths=list(paths), urls=list(urls), png_path=png_path, json_path=json_path,
        csv_path=csv_path, top=top, quiet=quiet, weights=weights, batch_size=batch_size,
        device=device,
    )
    run_reporting_errors(debug, lambda: run_tagging(request))


@main.command("emotion")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="Tag the audio of a web page yt-dlp supports (repeatable).")
@click.option("--png", "png_path", type=click.Path(path_type=Path), metavar="FILE",
              help="Write the strips as a PNG (a folder when several songs are tagged).")
@click.option("--json", "json_path", metavar="FILE",
              help="Write per-second and song values as JSON (JSON Lines for several songs); "
                   "- is stdout.")
@click.option("--csv", "csv_path", metavar="FILE",
              help="Write a song row and one row per second; - is stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No sparklines or song values in the terminal.")
@click.option("--weights", type=click.Path(path_type=Path), metavar="CKPT",
              help="A checkpoint made by 'genre-tag retrain --task emotion' instead of the "
                   "bundled model.")
@click.option("--batch-size", default=128, show_default=True, type=click.IntRange(1),
              help="Seconds per forward pass.")
@device_option
@debug_option
def emotion_command(paths: tuple[Path, ...], urls: tuple[str, ...], png_path: Path | None,
                    json_path: str | None, csv_path: str | None, quiet: bool,
                    weights: Path | None, batch_size: int, device: str, debug: bool) -> None:
    """Valence, energy and danceability (0-1) per second and per song."""
    if not paths and not urls:
        raise click.UsageError("give at least one audio file, folder or --url")
    from tagger.emotion.runner import EmotionRequest, run_emotion

    request = EmotionRequest(
        paths=list(paths), urls=list(urls), png_path=png_path, json_path=json_path,
        csv_path=csv_path, quiet=quiet, weights=weights, batch_size=batch_size, device=device,
    )
    run_reporting_errors(debug, lambda: run_emotion(request))


@main.command("retrain")
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path),
              help="A folder of genre sub-folders of audio (GTZAN layout); for --task "
                   "emotion a 4Q, Emotify or NTUA folder, or a folder of them.")
@click.option("--task", default="genre", show_default=True,
              type=click.Choice(["genre", "emotion"]),
              help="emotion: valence/energy/danceability from 4Q, Emotify or NTUA data "
                   "(defaults then: --out runs/emotion --name emotion-model --epochs 12).")
@click.option("--out", "out_dir", default=Path("runs/genre"), show_default=True,
              type=click.Path(path_type=Path), help="Run folder for the checkpoint and metrics.")
@click.option("--name", default="genre-model", show_default=True, help="The model's name.")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--weight-decay", default=1e-2, show_default=True, type=click.FloatRange(min=0))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--valid-share", default=0.2, show_default=True, type=click.FloatRange(0, 1),
              help="Share of clips per genre held out when DIR has no clips.csv split.")
@click.option("--threads", default=0, type=click.IntRange(0),
              help="CPU threads for torch (0: torch's default).")
@click.option("--cache-dir", type=click.Path(path_type=Path),
              help="Where extracted melgrams are cached (default: the user cache folder).")
@device_option
@debug_option
def retrain_command(data_dir: Path, task: str, out_dir: Path, name: str, epochs: int,
                    batch_size: int, lr: float, weight_decay: float, seed: int, valid_share: float,
                    threads: int, cache_dir: Path | None, device: str, debug: bool) -> None:
    """Train a genre model on DIR/GENRE/*.audio and write a checkpoint for --weights.

    With --task emotion, train a valence/energy/danceability model for
    'genre-tag emotion --weights'.
    """
    if task == "emotion":
        from tagger.emotion import EMOTION_DEFAULTS

        ctx = click.get_current_context()
        for key, value in EMOTION_DEFAULTS.items():
            if ctx.get_parameter_source(key) is click.core.ParameterSource.DEFAULT:
                ctx.params[key] = value
        out_dir, name, epochs = ctx.params["out_dir"], ctx.params["name"], ctx.params["epochs"]
    options: dict[str, Any] = dict(
        data_dir=data_dir, out_dir=out_dir, name=name, epochs=epochs, batch_size=batch_size,
        lr=lr, weight_decay=weight_decay, seed=seed, valid_share=valid_share, threads=threads,
        cache_dir=cache_dir, device=device,
        command=canonical_command("retrain", click.get_current_context()),
    )
    if task == "emotion":
        from tagger.emotion.retrain import run_emotion_retrain as run_retrain
    else:
        from tagger.retrain import run_retrain

    run_reporting_errors(debug, lambda: run_retrain(**options))
