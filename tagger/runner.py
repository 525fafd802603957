"""The tagging workflow of ``genre-tag`` and ``genre-tag emotion``: collect inputs, tag
each, render, report failures.

URLs are expanded first (a playlist or channel page gives one input per
entry), so one progress bar counts every song. One bad file, URL or entry is
reported on one line and the rest go on; the exit status is non-zero when
anything failed. What differs between the commands (the model and the four
renderers) comes in a ``Job``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from tagger.audio import AUDIO_EXTENSIONS, find_audio_files
from tagger.download import DownloadSettings, MediaEntry
from tagger.errors import AudioError, OutputError, TaggerError
from tagger.results import SongResult

EXIT_OK, EXIT_SOME_FAILED = 0, 1


@dataclass
class TagRequest:
    paths: list[Path]
    urls: list[str]
    png_path: Path | None = None
    json_path: str | None = None
    csv_path: str | None = None
    top: int = 3
    # Genre tagging only: the uncertain threshold (None: the model card's) and the
    # smoothing window in seconds (0: off).
    uncertain_below: float | None = None
    smooth_seconds: int = 0
    quiet: bool = False
    weights: Path | None = None
    batch_size: int = 64
    device: str = "auto"
    download: DownloadSettings = field(default_factory=DownloadSettings)


class FileTagger(Protocol):
    def tag_file(self, path: Path, source: str | None = None,
                 title: str | None = None, **options: Any) -> Any: ...


def no_tag_options(request: TagRequest) -> dict[str, Any]:
    """For jobs whose ``tag_file`` takes no options from the request."""
    return {}


@dataclass(frozen=True)
class Job:
    """What one command does with each song: its model, its four renderers and the
    keyword arguments of ``tag_file`` that come from the request."""

    load: Callable[[TagRequest], FileTagger]
    show: Callable[[Any, Console, TagRequest], None]
    write_png: Callable[[Any, Path], None]
    write_json: Callable[[list[Any], str], None]
    write_csv: Callable[[list[Any], str], None]
    tag_options: Callable[[TagRequest], dict[str, Any]] = no_tag_options


@dataclass
class Outcome:
    results: list[Any] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def collect_files(paths: list[Path], outcome: Outcome) -> list[Path]:
    """Expand folders recursively; a path that yields nothing is a failure."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = find_audio_files(path)
            if not found:
                extensions = " ".join(sorted(AUDIO_EXTENSIONS))
                outcome.failures.append(
                    f"{path}: folder holds no audio files (looked for {extensions})")
            files += found
        elif path.exists():
            files.append(path)
        else:
            outcome.failures.append(f"{path}: no such file or folder (check the path)")
    return files


def png_target(request: TagRequest, result: Any, n_songs: int) -> Path | None:
    """The PNG file for one song: the given path, or a file in that folder for several songs."""
    if request.png_path is None:
        return None
    if n_songs == 1 and not request.png_path.is_dir():
        return request.png_path
    safe_title = "".join(c if c.isalnum() or c in "-_. " else "_" for c in result.title)
    return request.png_path / f"{safe_title.strip() or 'song'}.png"


def check_output_paths(request: TagRequest) -> None:
    """Fail before any work when an output's folder does not exist or cannot be written."""
    for target in (request.json_path, request.csv_path):
        if target and target != "-":
            folder = Path(target).parent
            if Path(target).is_dir():
                raise OutputError("is a folder, not a file", target, "give a file name")
            if not folder.is_dir() or not os.access(folder, os.W_OK):
                raise OutputError("cannot write here: the folder is missing or read-only", target,
                                  "choose another output path")


def genre_job() -> Job:
    from tagger.inference import Tagger
    from tagger.render.records import write_csv, write_json
    from tagger.render.terminal import render_song

    def write_png(result: SongResult, path: Path) -> None:
        from tagger.render.picture import write_png  # matplotlib only when asked

        write_png(result, path)

    return Job(
        load=lambda r: Tagger.load(r.weights, r.device, r.batch_size),
        show=lambda result, console, r: render_song(result, console, r.top),
        write_png=write_png, write_json=write_json, write_csv=write_csv,
        tag_options=lambda r: {"uncertain_below": r.uncertain_below,
                               "smooth_seconds": r.smooth_seconds},
    )


def run_tagging(request: TagRequest) -> int:
    return run_job(request, genre_job())


def run_job(request: TagRequest, job: Job) -> int:
    from tagger.download import expand_url, fetch_entry, forget

    check_output_paths(request)
    console = Console()
    errors = Console(stderr=True)
    outcome = Outcome()
    files = collect_files(request.paths, outcome)
    to_stdout = "-" in (request.json_path, request.csv_path)
    show = not request.quiet and not to_stdout

    def report(message: str) -> None:
        outcome.failures.append(message)
        errors.print(f"[red]genre-tag: error:[/] {message}", highlight=False, soft_wrap=True)

    for message in list(outcome.failures):
        errors.print(f"[red]genre-tag: error:[/] {message}", highlight=False, soft_wrap=True)

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(), console=errors, transient=True,
        disable=len(files) < 2 and not request.urls,
    )
    with progress:
        entries: list[MediaEntry] = []
        for url in request.urls:
            listing = progress.add_task(f"reading {url[:50]}", total=None, detail="")
            try:
                entries += expand_url(url, request.download)
            except TaggerError as error:
                report(error.message)
            finally:
                progress.remove_task(listing)
        unusable_inputs = len(outcome.failures)
        n_songs = len(files) + len(entries)

        def finish(result: Any) -> None:
            outcome.results.append(result)
            if show:
                job.show(result, console, request)
            if (target := png_target(request, result, n_songs)) is not None:
                job.write_png(result, target)

        if n_songs:
            tagger = job.load(request)
            options = job.tag_options(request)
            songs = progress.add_task("tagging", total=n_songs, detail=f"0/{n_songs}")
            done_songs = 0

            def advance() -> None:
                nonlocal done_songs
                done_songs += 1
                progress.update(songs, completed=done_songs, detail=f"{done_songs}/{n_songs}")

            def show_download(task: TaskID, done: int, total: int | None) -> None:
                size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
                progress.update(task, completed=done, total=total, detail=size)

            for entry in entries:
                download = progress.add_task(f"downloading {entry.title[:40]}", total=None,
                                             detail="")
                try:
                    fetched = fetch_entry(entry, request.download,
                                          lambda done, total, task=download:
                                          show_download(task, done, total))
                    try:
                        finish(tagger.tag_file(fetched.path, source=entry.key,
                                               title=fetched.title, **options))
                    except AudioError as error:
                        forget(entry.key, request.download.cache_dir)
                        raise AudioError(error.what, entry.key, error.hint) from error
                except OutputError:
                    raise
                except TaggerError as error:
                    report(error.message)
                finally:
                    progress.remove_task(download)
                advance()
            for path in files:
                progress.update(songs, description=f"tagging {path.name[:40]}")
                try:
                    finish(tagger.tag_file(path, **options))
                except OutputError:
                    raise
                except TaggerError as error:
                    report(error.message)
                advance()

    if outcome.results:
        if request.json_path:
            job.write_json(outcome.results, request.json_path)
        if request.csv_path:
            job.write_csv(outcome.results, request.csv_path)
    if outcome.failures and n_songs + unusable_inputs > 1:
        errors.print(f"{len(outcome.results)} of {n_songs + unusable_inputs} inputs tagged, "
                     f"{len(outcome.failures)} failed", highlight=False)
    return EXIT_SOME_FAILED if outcome.failures else EXIT_OK
