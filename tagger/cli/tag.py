"""``genre-tag tag`` (the default command) and ``genre-tag emotion``: inputs, downloads,
outputs and the model; with --write-tags, writing genres into the files."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from tagger.cli.common import (
    DURATION,
    SIZE,
    debug_option,
    device_option,
    hint_unused_gpu,
    run_reporting_errors,
)
from tagger.library.genres import DEFAULT_MAX_GENRES, DEFAULT_MIN_SHARE
from tagger.segments import DEFAULT_MIN_SEGMENT_SECONDS, DEFAULT_SWITCH_PENALTY

# tagger.backends.BACKENDS, spelled out so that the command line starts without importing
# the model code (tests/test_backends.py keeps the two equal).
BACKENDS = ("auto", "torch", "openvino", "onnx")


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
        click.option("--backend", default="auto", show_default=True,
                     type=click.Choice(BACKENDS, case_sensitive=False),
                     help="What runs the model on the CPU: auto (OpenVINO, else ONNX Runtime, "
                          "when installed and the model is a musicnn one; else torch), or one "
                          "of them by name."),
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
                     help="Also write genres that win this share of the seconds (not for "
                          "models with per-genre thresholds: their song's genres are those "
                          "that reach their threshold)."),
        click.option("--max-genres", default=DEFAULT_MAX_GENRES, show_default=True,
                     type=click.IntRange(1), metavar="K", help="Write at most K genres per song."),
        click.option("--force-uncertain", is_flag=True,
                     help="Write the top genre even when the song is uncertain: its top genre "
                          "is below the model's uncertain threshold (or, with per-genre "
                          "thresholds, no genre reaches its own)."),
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


@click.command("tag")
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
@click.option("--segments", is_flag=True,
              help="List the song's genre segments in the terminal and as scope=segment CSV "
                   "rows (JSON always has them).")
@click.option("--cue", "cue_path", type=click.Path(path_type=Path), metavar="FILE",
              help="Write a CUE sheet with one track per segment, titled by its genre (a "
                   "folder when several songs are tagged).")
@click.option("--chapters", "chapters_path", type=click.Path(path_type=Path), metavar="FILE",
              help="Write the segments as FFmetadata chapters, for ffmpeg -i SONG -i FILE "
                   "-map_metadata 1 -codec copy OUT (a folder when several songs are tagged).")
@click.option("--min-segment", default=f"{DEFAULT_MIN_SEGMENT_SECONDS:g}s", show_default=True,
              type=DURATION, metavar="TIME",
              help="The shortest genre segment (45s, 2m; 0: any length).")
@click.option("--switch-penalty", default=DEFAULT_SWITCH_PENALTY, show_default=True,
              type=click.FloatRange(0), metavar="X",
              help="What a change of genre costs, in log-probability: higher gives fewer, "
                   "longer segments.")
@click.option("--excerpts", default=0, show_default=True, type=click.IntRange(0), metavar="N",
              help="With --write-tags: judge each song's genres from N excerpts of 5 seconds "
                   "spread over it instead of every second (0: every second).")
@library_options
def tag_command(library: LibraryOptions, debug: bool, **given: Any) -> None:
    """Tag audio files, folders (recursively) and URLs, second by second; with --write-tags,
    write the genres into the files."""
    request = tag_request({**given, "debug": debug})
    library.check(click.get_current_context(), request)
    per_second = request.json_path or request.csv_path or request.png_path
    if request.excerpts and (per_second or not library.write_tags):
        raise click.UsageError("--excerpts is for --write-tags without --json, --csv or --png: "
                               "timelines need every second")
    if not library.restore_tags:
        hint_unused_gpu(request.device)
    if library.write_tags or library.restore_tags:
        run_reporting_errors(debug, library.action(request))
    from tagger.runner import run_tagging

    run_reporting_errors(debug, lambda: run_tagging(request))


@click.command("emotion")
@tagging_options("sparklines and song values", "genre-tag retrain --task emotion")
def emotion_command(debug: bool, **given: Any) -> None:
    """Valence, energy and danceability (0-1) per second and per song."""
    request = tag_request({**given, "debug": debug})
    hint_unused_gpu(request.device)
    from tagger.runner import run_emotion

    run_reporting_errors(debug, lambda: run_emotion(request))
