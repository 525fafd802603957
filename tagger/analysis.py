"""Analysing songs with the results cache, in this process or in worker processes.

A song is looked up in the results cache first (by its audio checksum and each model's);
only a miss is decoded and run through the models that miss, and their outputs are
stored at once, so a run that stops keeps every song it finished. With several jobs, each
worker process loads the models once and does whole songs (hash, decode, melgrams,
models) with its share of the CPU threads. Results come back in the order of the inputs,
and are the same as in one process.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing import get_context, resource_tracker
from pathlib import Path
from types import FrameType

from tagger.cards import read_card
from tagger.devices import usable_cpus
from tagger.errors import TaggerError
from tagger.inference import AudioModel, outputs_of
from tagger.results_cache import ModelOutputs, ResultsCache, open_results_cache


@dataclass
class Analysis:
    """What became of one song: the outputs of each model, in the analyser's order (from
    the cache, all of them, or not), or the expected failure that stopped it, and the
    warnings its analysis gave."""

    path: Path
    outputs: list[ModelOutputs] = field(default_factory=list)
    from_cache: bool = False
    error: TaggerError | None = None
    warnings: list[Warning | str] = field(default_factory=list)


def analyse_file(models: list[AudioModel], cache: ResultsCache | None, path: Path,
                 source: str | None = None, read_cache: bool = True) -> Analysis:
    """Look ``path`` up in ``cache`` for each of ``models`` (unless ``read_cache`` is
    false); run the models it misses over one decode of it, and store their outputs. An
    expected failure is returned, not raised; warnings are collected, to be shown by the
    process that reports the song."""
    analysis = Analysis(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            audio = cache.audio_checksum(path) if cache else None
            hits = [cache.get(model.results_key, audio) if audio and read_cache else None
                    for model in models]
            missing = [model for model, hit in zip(models, hits, strict=True) if hit is None]
            fresh = outputs_of(missing, path, source or str(path)) if missing else []
            if audio:
                for model, outputs in zip(missing, fresh, strict=True):
                    cache.put(model.results_key, audio, outputs)
            computed = iter(fresh)
            analysis.outputs = [hit if hit is not None else next(computed) for hit in hits]
            analysis.from_cache = not missing
        except TaggerError as error:
            analysis.error = error
    analysis.warnings = [warning.message for warning in caught]
    return analysis


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process needs to load the same models and open the same cache."""

    # Each model's class, weights and excerpts.
    models: tuple[tuple[type[AudioModel], Path, int], ...]
    device: str
    batch_size: int
    backend: str
    cache_path: Path | None
    read_cache: bool
    threads: int


@dataclass
class _Worker:
    models: list[AudioModel]
    cache: ResultsCache | None
    read_cache: bool


# The models and cache of a worker process, or what stopped it from loading them.
_worker: _Worker | BaseException | None = None


def _start_worker(setup: WorkerSetup) -> None:
    """Load the models in a new worker process. Ctrl-C is the main process's to handle (it
    ends the workers: SIGTERM), so the worker, started with SIGINT blocked
    (``_signals_held``), ignores it from here on. A failure is kept and raised with the
    first song, not here, where the pool would start the worker again and again."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        models = [model_class(*read_card(weights), setup.device, setup.batch_size,
                              setup.backend, excerpts, setup.threads)
                  for model_class, weights, excerpts in setup.models]
        cache = open_results_cache(setup.cache_path) if setup.cache_path else None
        _worker = _Worker(models, cache, setup.read_cache)
    except BaseException as error:  # raised in the main process with the first song
        _worker = error


def _analyse_in_worker(path: Path) -> Analysis:
    if isinstance(_worker, BaseException):
        raise _worker
    assert _worker is not None, "the worker was not started"
    return analyse_file(_worker.models, _worker.cache, path, read_cache=_worker.read_cache)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while worker processes are started, and raise them
    once the pool is up and can be ended. The workers start with SIGINT blocked, so a
    Ctrl-C that reaches the whole process group while they import torch is left to the
    main process, which ends them (SIGTERM, which they take from the start).

    multiprocessing's resource tracker is started first: starting it unblocks SIGINT.
    Blocking SIGINT in this thread is not enough here: other threads (the model's) may
    take a signal, so the handlers only note it meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    resource_tracker.ensure_running()
    came: list[int] = []

    def note(signal_number: int, frame: FrameType | None) -> None:
        came.append(signal_number)

    with contextlib.ExitStack() as restore:  # each step runs, even if a signal breaks one
        for number in (signal.SIGINT, signal.SIGTERM):
            handler = signal.signal(number, note)  # None: not set from Python
            restore.callback(signal.signal, number, signal.SIG_DFL if handler is None
                             else handler)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        restore.callback(signal.pthread_sigmask, signal.SIG_UNBLOCK, {signal.SIGINT})
        yield
    for number in dict.fromkeys(came):
        signal.raise_signal(number)


class Analyser:
    """Analyses songs with ``models`` (one decode for all) and ``cache`` in this process,
    or in up to ``jobs`` worker processes when several songs miss the cache."""

    def __init__(self, models: list[AudioModel], cache: ResultsCache | None, jobs: int,
                 read_cache: bool = True) -> None:
        self.models = models
        self.cache = cache
        self.jobs = jobs
        self.read_cache = read_cache

    def one(self, path: Path, source: str | None = None) -> Analysis:
        """Analyse one song in this process."""
        return analyse_file(self.models, self.cache, path, source, self.read_cache)

    def many(self, paths: list[Path]) -> Iterator[Analysis]:
        """Analyse ``paths``, yielding in their order. Songs the cache remembers are read
        from it; the others go to the workers (or are analysed here, with one job or one
        such song). Close the iterator (``contextlib.closing``) to end the workers early."""
        cached = [self._remembered(path) for path in paths]
        misses = [path for path, hit in zip(paths, cached, strict=True) if not hit]
        with self._analyses(misses) as analysed:
            for path, hit in zip(paths, cached, strict=True):
                if not hit or self.cache is None:
                    yield next(analysed)
                    continue
                outputs = [self.cache.get(model.results_key, hit) for model in self.models]
                if all(model_outputs is not None for model_outputs in outputs):
                    yield Analysis(path, outputs, from_cache=True)
                else:
                    yield self.one(path)  # evicted meanwhile

    def _remembered(self, path: Path) -> str | None:
        """The audio checksum of ``path`` when the cache remembers both it and every
        model's result, without reading the file."""
        if not (self.cache and self.read_cache):
            return None
        audio = self.cache.known_audio(path)
        remembered = audio and all(self.cache.has(model.results_key, audio)
                                   for model in self.models)
        return audio if remembered else None

    def _relayed(self, analysis: Analysis) -> Analysis:
        """A worker's analysis, with the results cache's warnings only the run's first."""
        if self.cache is not None:
            analysis.warnings = self.cache.relayed(analysis.warnings)
        return analysis

    @contextlib.contextmanager
    def _analyses(self, paths: list[Path]) -> Iterator[Iterator[Analysis]]:
        jobs = min(self.jobs, len(paths))
        if jobs <= 1:
            yield (self.one(path) for path in paths)
            return
        first = self.models[0]
        setup = WorkerSetup(tuple((type(model), model.path, model.excerpts)
                                  for model in self.models),
                            first.device, first.batch_size, first.backend,
                            self.cache.path if self.cache else None,
                            self.read_cache,
                            max(1, usable_cpus() // jobs))
        pool = None
        try:
            with _signals_held():
                pool = get_context("spawn").Pool(jobs, initializer=_start_worker,
                                                 initargs=(setup,))
            yield map(self._relayed, pool.imap(_analyse_in_worker, paths))
            pool.close()
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
