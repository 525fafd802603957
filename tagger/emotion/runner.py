"""The ``genre-tag emotion`` workflow: collect inputs, tag each, render, report failures.

It mirrors ``tagger.runner.run_tagging`` and reuses its helpers: one bad
file or URL is reported on one line and the rest go on; the exit status is
non-zero when anything failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from tagger.emotion.results import EmotionResult
from tagger.errors import AudioError, OutputError, TaggerError
from tagger.runner import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    Outcome,
    check_output_paths,
    collect_files,
    png_target,
)


@dataclass
class EmotionRequest:
    paths: list[Path]
    urls: list[str]
    png_path: Path | None = None
    json_path: str | None = None
    csv_path: str | None = None
    quiet: bool = False
    weights: Path | None = None
    batch_size: int = 128
    device: str = "auto"


@dataclass
class EmotionOutcome:
    results: list[EmotionResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_emotion(request: EmotionRequest) -> int:
    from tagger.download import fetch_audio, forget
    from tagger.emotion.inference import EmotionTagger
    from tagger.render.emotion_picture import write_emotion_png
    from tagger.render.emotion_records import write_emotion_csv, write_emotion_json
    from tagger.render.emotion_terminal import render_emotion

    check_output_paths(request)  # type: ignore[arg-type]  # same output fields
    console = Console()
    errors = Console(stderr=True)
    outcome = EmotionOutcome()
    collected = Outcome()
    files = collect_files(request.paths, collected)
    outcome.failures += collected.failures
    unusable_paths = len(outcome.failures)
    n_songs = len(files) + len(request.urls)
    show = not request.quiet and "-" not in (request.json_path, request.csv_path)

    def print_error(message: str) -> None:
        errors.print(f"[red]genre-tag: error:[/] {message}", highlight=False, soft_wrap=True)

    def report(message: str) -> None:
        outcome.failures.append(message)
        print_error(message)

    for message in outcome.failures:
        print_error(message)

    def finish(result: EmotionResult) -> None:
        outcome.results.append(result)
        if show:
            render_emotion(result, console)
        if (target := png_target(request, result, n_songs)) is not None:  # type: ignore[arg-type]
            write_emotion_png(result, target)

    if n_songs:
        tagger = EmotionTagger.load(request.weights, request.device, request.batch_size)
        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(), console=errors, transient=True,
            disable=n_songs < 2 and not request.urls,
        )
        with progress:
            songs = progress.add_task("tagging", total=n_songs, detail=f"0/{n_songs}")

            def advance() -> None:
                progress.advance(songs)
                progress.update(songs, detail=f"{int(progress.tasks[songs].completed)}/{n_songs}")

            def show_download(task: TaskID, done: int, total: int | None) -> None:
                size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
                progress.update(task, completed=done, total=total, detail=size)

            for url in request.urls:
                download = progress.add_task(f"downloading {url[:50]}", total=None, detail="")
                try:
                    fetched = fetch_audio(url, on_progress=lambda done, total, task=download:
                                          show_download(task, done, total))
                    try:
                        finish(tagger.tag_file(fetched.path, source=url, title=fetched.title))
                    except AudioError as error:
                        forget(url)
                        raise AudioError(error.what, url, error.hint) from error
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
                    finish(tagger.tag_file(path))
                except OutputError:
                    raise
                except TaggerError as error:
                    report(error.message)
                advance()

    if outcome.results:
        if request.json_path:
            write_emotion_json(outcome.results, request.json_path)
        if request.csv_path:
            write_emotion_csv(outcome.results, request.csv_path)
    if outcome.failures and n_songs + unusable_paths > 1:
        errors.print(f"{len(outcome.results)} of {n_songs + unusable_paths} inputs tagged, "
                     f"{len(outcome.failures)} failed", highlight=False)
    return EXIT_SOME_FAILED if outcome.failures else EXIT_OK
