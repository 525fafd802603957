"""The ``genre-tag`` command: a thin click layer over the library.

Heavy imports (torch, PyAV, matplotlib) happen inside the commands, so
``genre-tag --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import re
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
    genre-tag --url URL                any site yt-dlp supports, playlists too
    genre-tag retrain --data DIR       train a model on your own folders
    genre-tag cache info|clear         the download cache of --url

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
              help="Tag the audio of a web page yt-dlp supports, or every entry of a playlist "
                   "or channel page (repeatable).")
@click.option("--max-items", type=click.IntRange(1), metavar="N",
              help="Tag at most the first N entries of each playlist or channel --url.")
@click.option("--max-duration", default="2h", show_default=True, type=DURATION, metavar="TIME",
              help="Refuse --url recordings longer than TIME (45s, 90m, 2h; 0: no limit) "
                   "before downloading them.")
@click.option("--cookies", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="FILE", help="Netscape cookies.txt for --url videos that need signing in "
                                   "(age-restricted, members-only); read, never written.")
@click.option("--cookies-from-browser", metavar="NAME", callback=check_browser,
              help="Use the cookies of a browser you are signed in with (firefox, chrome, "
                   "edge, safari, ...; or BROWSER[+KEYRING][:PROFILE][::CONTAINER]).")
@click.option("--cache-max", default="2GB", show_default=True, type=SIZE, metavar="SIZE",
              help="Size cap of the download cache; the least recently used downloads go.")
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
def tag_command(paths: tuple[Path, ...], urls: tuple[str, ...], max_items: int | None,
                max_duration: float, cookies: Path | None, cookies_from_browser: str | None,
                cache_max: float, png_path: Path | None, json_path: str | None,
                csv_path: str | None, top: int, quiet: bool, weights: Path | None,
                batch_size: int, device: str, debug: bool) -> None:
    """Tag audio files, folders (recursively) and URLs, second by second."""
    if not paths and not urls:
        raise click.UsageError("give at least one audio file, folder or --url")
    from tagger.download import DownloadSettings
    from tagger.runner import TagRequest, run_tagging

    download = DownloadSettings(
        cache_max_bytes=int(cache_max), max_items=max_items, max_duration=max_duration or None,
        cookies=cookies, cookies_from_browser=cookies_from_browser,
    )
    request = TagRequest(
        paths=list(paths), urls=list(urls), png_path=png_path, json_path=json_path,
        csv_path=csv_path, top=top, quiet=quiet, weights=weights, batch_size=batch_size,
        device=device, download=download,
    )
    run_reporting_errors(debug, lambda: run_tagging(request))


@main.command("retrain")
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path),
              help="A folder of genre sub-folders of audio (GTZAN layout).")
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
def retrain_command(data_dir: Path, out_dir: Path, name: str, epochs: int, batch_size: int,
                    lr: float, weight_decay: float, seed: int, valid_share: float,
                    threads: int, cache_dir: Path | None, device: str, debug: bool) -> None:
    """Train a genre model on DIR/GENRE/*.audio and write a checkpoint for --weights."""
    options: dict[str, Any] = dict(
        data_dir=data_dir, out_dir=out_dir, name=name, epochs=epochs, batch_size=batch_size,
        lr=lr, weight_decay=weight_decay, seed=seed, valid_share=valid_share, threads=threads,
        cache_dir=cache_dir, device=device,
        command=canonical_command("retrain", click.get_current_context()),
    )
    from tagger.retrain import run_retrain

    run_reporting_errors(debug, lambda: run_retrain(**options))


@main.group("cache")
def cache_group() -> None:
    """The download cache of --url, in the user cache folder."""


@cache_group.command("info")
def cache_info_command() -> None:
    """Show where the download cache is and how much it holds."""
    from tagger.download import cache_usage

    usage = cache_usage()
    click.echo(f"{usage.folder}: {usage.files} files, {usage.size / 1e6:.1f} MB "
               "(capped per run by --cache-max, default 2 GB)")


@cache_group.command("clear")
@debug_option
def cache_clear_command(debug: bool) -> None:
    """Delete every cached download."""
    from tagger.download import clear_cache

    def clear() -> int:
        removed = clear_cache()
        click.echo(f"removed {removed.files} files ({removed.size / 1e6:.1f} MB) "
                   f"from {removed.folder}")
        return 0

    run_reporting_errors(debug, clear)
