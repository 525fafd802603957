"""A batch run: SOURCES expanded, the model checked once, RESULTS_DIR made ready (held for
this run, what a killed run left half-done removed, the songs it holds for this model
found), the songs tagged by the chosen engine, and a summary.

Songs RESULTS_DIR holds already (same source, same audio checksum, same model) are
skipped, so a killed or preempted run goes on where it stopped. Songs that failed before
are tried again; the errors parts of earlier runs are deleted once a run has gone
through every song.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tagger.batch.request import ENGINES, BatchRequest, BatchSummary
from tagger.batch.sources import expand_sources
from tagger.errors import TaggerError

if TYPE_CHECKING:
    from tagger.batch.stages import BatchSetup, SongOutcome
    from tagger.batch.tables import DoneSongs


def _check_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError as error:
        raise TaggerError("genre-tag batch writes Parquet with pyarrow, which is not installed",
                          hint="install it with pip install 'genre-tag[ray]'") from error


def run_batch(request: BatchRequest) -> BatchSummary:
    """Tag every song of ``request`` into its RESULTS_DIR and return the summary. Raises
    TaggerError for what stops the whole run (a model, RESULTS_DIR, a list of songs)."""
    if request.engine not in ENGINES:
        raise ValueError(f"unknown engine {request.engine!r}")
    _check_pyarrow()
    if request.engine == "ray":
        from tagger.batch.ray_engine import import_ray

        import_ray()  # before any work: say how to install it
    from tagger.batch import tables
    from tagger.batch.stages import MODELS, BatchSetup, write_songs

    expanded = expand_sources(request.sources, request.column)
    model = MODELS[request.task].load(request.weights, "cpu", request.batch_size)
    setup = BatchSetup(request.task, model.path, model.checksum, model.card.front_end,
                       request.batch_size, request.device)
    results_dir = request.results_dir
    summary = BatchSummary()

    def count(outcomes: list) -> None:
        for outcome in outcomes:
            summary.add(outcome.status, outcome.seconds_of_audio)

    started = time.monotonic()
    with tables.locked(results_dir):
        tables.prepare_results_dir(results_dir, request.task)
        earlier_errors = tables.earlier_error_parts(results_dir)
        done = tables.done_songs(results_dir, setup.model_sha256)
        if expanded.failures:
            count(write_songs([tables.FinishedSong(source, error=message, kind="SourceError")
                               for source, message in expanded.failures], results_dir, setup))
        if expanded.songs and request.engine == "ray":
            from tagger.batch.ray_engine import run_ray

            run_ray(expanded.songs, setup, done, results_dir, request.songs_per_part,
                    request.ray, count)
        elif expanded.songs:
            _run_local_with_progress(expanded.songs, setup, done, request, count)
        for path in earlier_errors:
            path.unlink(missing_ok=True)
    summary.wall_seconds = time.monotonic() - started
    return summary


def _run_local_with_progress(songs: list[str], setup: BatchSetup, done: DoneSongs,
                             request: BatchRequest,
                             count: Callable[[list[SongOutcome]], None]) -> None:
    """The local engine, with a progress bar on a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from tagger.batch.local import run_local
    from tagger.devices import device_name

    device_name(request.device)  # an unusable --device fails before any work
    errors = Console(stderr=True)
    with Progress("tagging", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=errors, transient=True, disable=not errors.is_terminal) as progress:
        bar = progress.add_task("tagging", total=len(songs))
        run_local(songs, setup, done, request.results_dir, request.songs_per_part, count,
                  lambda source: progress.advance(bar))
