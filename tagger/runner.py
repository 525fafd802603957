"""The tagging workflow of ``genre-tag`` and ``genre-tag emotion``: collect inputs, tag
each, render, report failures.

URLs are expanded first (a playlist or channel page gives one input per
entry), so one progress bar counts every song. One bad file, URL or entry is
reported on one line and the rest go on; the exit status is non-zero when
anything failed. Outputs are checked before any work (none may be an input
or the output of two options), and each song's JSON/CSV records are written
as it finishes. Songs are analysed through the results cache, files in worker
processes when there are several jobs (``tagger.analysis``); results are
finished in the order of the inputs. What differs between the commands (the
model, its views and its records) comes in a ``Job``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text

from tagger.audio import AUDIO_EXTENSIONS, check_audio_path, find_audio_files
from tagger.download import DownloadSettings, MediaEntry
from tagger.errors import AudioError, OutputError, TaggerError
from tagger.names import file_name_for, printable
from tagger.output_paths import SongFileTargets, check_output_paths, check_song_folder
from tagger.render.records import STDOUT, RecordFormat, RecordOutputs
from tagger.segments import DEFAULT_MIN_SEGMENT_SECONDS, DEFAULT_SWITCH_PENALTY

if TYPE_CHECKING:
    from tagger.analysis import Analysis
    from tagger.inference import AudioModel

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
    # Genre tagging only: segments in the terminal and as CSV rows, the CUE sheet and
    # chapter files (folders for several songs), and the segments' settings.
    segments: bool = False
    cue_path: Path | None = None
    chapters_path: Path | None = None
    min_segment: float = DEFAULT_MIN_SEGMENT_SECONDS
    switch_penalty: float = DEFAULT_SWITCH_PENALTY
    quiet: bool = False
    weights: Path | None = None
    batch_size: int = 64
    device: str = "auto"
    backend: str = "auto"
    # Genre tagging for --write-tags only: analyse this many excerpts of each song (0: all),
    # and also run the bundled emotion model (--write-emotion), over the same decode.
    excerpts: int = 0
    with_emotion: bool = False
    download: DownloadSettings = field(default_factory=DownloadSettings)
    # Worker processes for files (None: the CPUs this process may use), and whether
    # results the cache holds are used (new results are stored either way).
    jobs: int | None = None
    use_cache: bool = True
    # Called with each tagged file, and once at the end of the run (instead of the failure
    # count line) with the outcome: writing tags (tagger.library.workflow).
    after_song: Callable[[TaggedSong], None] | None = None
    after_run: Callable[[Outcome], None] | None = None


def no_tag_options(request: TagRequest) -> dict[str, Any]:
    """For jobs whose ``result_from`` takes no options from the request."""
    return {}


@dataclass(frozen=True)
class SongFile:
    """A file of one option that each song gets (``--png``, ``--cue``, ...): the option's
    path (None: not asked), the suffix of a song's file in its folder, and the writer of
    a song to a target."""

    option: str
    path: Path | None
    suffix: str
    write: Callable[[TaggedSong, Path], None]


@dataclass(frozen=True)
class Job:
    """What one command does with each song: its models (the first gives the song's result,
    the others its ``more_results``), its terminal view, its files (PNG, ...), its JSON/CSV
    records and the keyword arguments of the first model's ``result_from`` that come from
    the request."""

    load: Callable[[TagRequest], list[AudioModel]]
    show: Callable[[Any, Console, TagRequest], None]
    song_files: list[SongFile]
    records: RecordFormat
    tag_options: Callable[[TagRequest], dict[str, Any]] = no_tag_options


@dataclass
class Outcome:
    tagged: int = 0
    # How many of the tagged songs came from the results cache (not analysed).
    from_cache: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaggedSong:
    """One finished song: its result, the input file it came from (None for a URL),
    whether its model outputs came from the results cache, the file analysed (the input,
    or the download in the download cache), and the results of the job's other models
    (the emotion of --write-emotion)."""

    result: Any
    path: Path | None
    from_cache: bool
    audio: Path
    more_results: tuple[Any, ...] = ()


def collect_files(paths: list[Path], outcome: Outcome) -> list[Path]:
    """Expand folders recursively; a path that yields nothing, or is no regular file (a
    device, a FIFO: refused before anything opens it), is a failure."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = find_audio_files(path)
            if not found:
                extensions = " ".join(sorted(AUDIO_EXTENSIONS))
                outcome.failures.append(
                    f"{path}: folder holds no audio files (looked for {extensions})")
            files += found
            continue
        try:
            check_audio_path(path)
        except AudioError as error:
            outcome.failures.append(error.message)
            continue
        files.append(path)
    return files


def print_error(console: Console, message: str) -> None:
    """``message`` on one line of ``console``, as it is: no markup, control characters
    escaped."""
    line = Text("genre-tag: error:", style="red")
    line.append(f" {printable(message)}")
    console.print(line, highlight=False, soft_wrap=True)


def cue_audio_name(song: TaggedSong, cue: Path) -> str:
    """The audio file a CUE sheet names: an input by its path from the sheet's folder, a
    download by its title (the cache is no place to play it from)."""
    if song.path is None:
        return file_name_for(song.result.title, song.audio.suffix)
    try:
        return os.path.relpath(song.path.absolute(), cue.absolute().parent)
    except ValueError:  # another drive
        return str(song.path.absolute())


def genre_job(request: TagRequest) -> Job:
    from tagger.inference import EmotionTagger, Tagger
    from tagger.render.chapters import write_chapters, write_cue
    from tagger.render.records import genre_records
    from tagger.render.terminal import render_song

    def write_png(song: TaggedSong, path: Path) -> None:
        from tagger.render.picture import write_png  # matplotlib only when asked

        write_png(song.result, path)

    return Job(
        load=lambda r: [Tagger.load(r.weights, r.device, r.batch_size, r.backend, r.excerpts),
                        *([EmotionTagger.load(None, r.device, r.batch_size, r.backend)]
                          if r.with_emotion else [])],
        show=lambda result, console, r: render_song(result, console, r.top, r.segments),
        song_files=[
            SongFile("--png", request.png_path, ".png", write_png),
            SongFile("--cue", request.cue_path, ".cue",
                     lambda song, path: write_cue(song.result, path, cue_audio_name(song, path))),
            SongFile("--chapters", request.chapters_path, ".chapters.txt",
                     lambda song, path: write_chapters(song.result, path)),
        ],
        records=genre_records(request.segments),
        tag_options=lambda r: {"uncertain_below": r.uncertain_below,
                               "smooth_seconds": r.smooth_seconds,
                               "min_segment_seconds": r.min_segment,
                               "switch_penalty": r.switch_penalty},
    )


def emotion_job(request: TagRequest) -> Job:
    from tagger.inference import EmotionTagger
    from tagger.render.emotion_records import EMOTION_RECORDS
    from tagger.render.emotion_terminal import render_emotion

    def write_png(song: TaggedSong, path: Path) -> None:
        from tagger.render.emotion_picture import write_emotion_png  # matplotlib only if asked

        write_emotion_png(song.result, path)

    return Job(
        load=lambda r: [EmotionTagger.load(r.weights, r.device, r.batch_size, r.backend)],
        show=lambda result, console, _: render_emotion(result, console),
        song_files=[SongFile("--png", request.png_path, ".png", write_png)],
        records=EMOTION_RECORDS,
    )


def run_tagging(request: TagRequest) -> int:
    return run_job(request, genre_job(request))


def run_emotion(request: TagRequest) -> int:
    return run_job(request, emotion_job(request))


def expand_urls(request: TagRequest, progress: Progress,
                report: Callable[[str], None]) -> list[MediaEntry]:
    """The songs of every ``--url``: a playlist or channel page gives one per entry."""
    from tagger.download import expand_url

    entries: list[MediaEntry] = []
    for url in request.urls:
        listing = progress.add_task(f"reading {printable(url)[:50]}", total=None, detail="")
        try:
            entries += expand_url(url, request.download)
        except TaggerError as error:
            report(error.message)
        finally:
            progress.remove_task(listing)
    return entries


def tag_songs(request: TagRequest, job: Job, entries: list[MediaEntry], files: list[Path],
              progress: Progress, finish: Callable[[TaggedSong], None],
              report: Callable[[str], None]) -> None:
    """Download and tag each entry, then tag each file, giving every song to ``finish`` in
    the order of the inputs; a song that fails is reported and the rest go on (an output
    that fails stops the run)."""
    from tagger.analysis import Analyser, open_results_cache
    from tagger.devices import usable_cpus
    from tagger.download import fetch_entry, forget

    model, *more_models = models = job.load(request)
    options = job.tag_options(request)
    cache = open_results_cache()
    analyser = Analyser(models, cache, request.jobs or usable_cpus(), request.use_cache)
    n_songs = len(entries) + len(files)
    songs = progress.add_task("tagging", total=n_songs, detail=f"0/{n_songs}")
    done_songs = cached_songs = 0

    def conclude(analysis: Analysis, source: str, title: str, input_file: Path | None,
                 audio: Path) -> None:
        """Show the song's warnings, raise its failure, or finish it."""
        nonlocal cached_songs
        for warning in analysis.warnings:
            warnings.warn(warning, stacklevel=1)
        if analysis.error is not None:
            raise analysis.error
        first, *more = analysis.outputs
        result = model.result_from(first, source, title, **options)
        more_results = tuple(more_model.result_from(outputs, source, title)
                             for more_model, outputs in zip(more_models, more, strict=True))
        cached_songs += analysis.from_cache
        finish(TaggedSong(result, input_file, analysis.from_cache, audio, more_results))

    def advance() -> None:
        nonlocal done_songs
        done_songs += 1
        cached = f", {cached_songs} from cache" if cached_songs else ""
        progress.update(songs, completed=done_songs, detail=f"{done_songs}/{n_songs}{cached}")

    def show_download(task: TaskID, done: int, total: int | None) -> None:
        size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        progress.update(task, completed=done, total=total, detail=size)

    try:
        for entry in entries:
            download = progress.add_task(f"downloading {printable(entry.title)[:40]}",
                                         total=None, detail="")
            try:
                fetched = fetch_entry(entry, request.download,
                                      lambda done, total, task=download:
                                      show_download(task, done, total))
                analysis = analyser.one(fetched.path, source=entry.key)
                if isinstance(error := analysis.error, AudioError):
                    forget(entry.key, request.download.cache_dir)
                    raise AudioError(error.what, entry.key, error.hint) from error
                conclude(analysis, entry.key, fetched.title, None, fetched.path)
            except OutputError:
                raise
            except TaggerError as error:
                report(error.message)
            finally:
                progress.remove_task(download)
            advance()
        with contextlib.closing(analyser.many(files)) as analyses:
            for path in files:
                progress.update(songs, description=f"tagging {printable(path.name)[:40]}")
                try:
                    conclude(next(analyses), str(path), path.stem, path, path)
                except OutputError:
                    raise
                except TaggerError as error:
                    report(error.message)
                advance()
    finally:
        if cache is not None:
            cache.evict()
            cache.close()


def run_job(request: TagRequest, job: Job) -> int:
    """Tag every input of ``request``; returns the exit status. Each song's records are
    written as it finishes, so a run that is interrupted (KeyboardInterrupt: the CLI raises
    it for Ctrl-C and SIGTERM) or fails keeps the songs it finished."""
    errors = Console(stderr=True)
    outcome = Outcome()
    files = collect_files(request.paths, outcome)
    taken = check_output_paths({"--json": request.json_path, "--csv": request.csv_path},
                               {f.option: f.path for f in job.song_files}, files)
    for message in outcome.failures:
        print_error(errors, message)

    def report(message: str) -> None:
        outcome.failures.append(message)
        print_error(errors, message)

    progress = Progress(
        TextColumn("{task.description}", markup=False), BarColumn(),
        TextColumn("{task.fields[detail]}", markup=False), TimeRemainingColumn(),
        console=errors, transient=True,
        disable=not errors.is_terminal or (len(files) < 2 and not request.urls),
    )
    with progress:
        entries = expand_urls(request, progress, report)
        unusable_inputs = len(outcome.failures)
        n_songs = len(files) + len(entries)
        for song_file in job.song_files:
            check_song_folder(song_file.option, song_file.path, song_file.suffix, n_songs)
        if n_songs:
            console = Console()
            show = not request.quiet and STDOUT not in (request.json_path, request.csv_path)
            targets = [(f, SongFileTargets(f.path, f.suffix, n_songs, taken))
                       for f in job.song_files]
            with RecordOutputs(job.records, request.json_path, request.csv_path,
                               single_song=n_songs == 1) as records:

                def finish(song: TaggedSong) -> None:
                    result = song.result
                    records.add(result)
                    outcome.tagged += 1
                    outcome.from_cache += song.from_cache
                    if show:
                        job.show(result, console, request)
                    for song_file, song_targets in targets:
                        if (target := song_targets.target(result.title)) is not None:
                            song_file.write(song, target)
                    if request.after_song is not None and song.path is not None:
                        request.after_song(song)

                tag_songs(request, job, entries, files, progress, finish, report)
    if request.after_run is not None:
        request.after_run(outcome)
    elif outcome.failures and n_songs + unusable_inputs > 1:
        errors.print(f"{outcome.tagged} of {n_songs + unusable_inputs} inputs tagged, "
                     f"{len(outcome.failures)} failed", highlight=False)
    return EXIT_SOME_FAILED if outcome.failures else EXIT_OK
