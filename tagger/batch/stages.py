"""The three stages of a batch run, the same on both engines.

1. ``prepare_song`` (CPU work, one song at a time): download a URL, take the audio
   checksum, skip a song RESULTS_DIR holds already, decode and compute the melgrams;
2. ``ModelStage`` (an actor: loads the checkpoint once, on a GPU when it has one): the
   model's outputs for each song's melgrams, turned into the song's result;
3. ``write_songs``: a part of each Parquet table for a batch of finished songs.

A song's expected failure is caught in the stage where it happens and travels on as its
one-line reason, to become a row of the errors table. Ray moves a batch of songs as a
column of pickled songs; ``*_batch`` and ``ModelStage.__call__`` are the stages in that
form.

On CPU-only nodes Ray fuses the first two stages into the model actors (their resources
match): each actor decodes and tags a song at a time, with no melgrams moved between
processes. With ``gpus_per_actor``, decoding stays in CPU tasks that feed the GPU actors.
"""

from __future__ import annotations

import functools
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tagger.audio import audio_content_sha256
from tagger.batch.sources import is_url
from tagger.batch.tables import DoneSongs, FinishedSong, write_part
from tagger.errors import AudioError, TaggerError
from tagger.features import FrontEndSpec, MelgramFrontEnd
from tagger.inference import (
    AudioModel,
    EmotionTagger,
    Tagger,
    melgram_batches,
    melgram_chunks,
    run_over_melgrams,
)
from tagger.results_cache import ModelOutputs

SONG_COLUMN = "song"
MODELS: dict[str, type[AudioModel]] = {"genre": Tagger, "emotion": EmotionTagger}


@dataclass(frozen=True)
class BatchSetup:
    """What every stage needs, on any machine of the cluster: the task, the checkpoint and
    its checksum and front end, the seconds per forward pass, and the CPU threads of a
    model actor (None: ``tagger.devices.default_threads``)."""

    task: str
    weights: Path
    model_sha256: str
    spec: FrontEndSpec
    batch_size: int = 64
    device: str = "auto"
    threads: int | None = None


@dataclass
class PreparedSong:
    """One song ready for the model: its melgrams ``(seconds, frames, mels)``, the seconds
    of real audio in each and which are silent; or why it failed, or that it is done."""

    source: str
    title: str = ""
    audio_sha256: str | None = None
    melgrams: np.ndarray | None = None
    valid_seconds: np.ndarray | None = None
    silent: np.ndarray | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    error: str | None = None
    kind: str | None = None
    skipped: bool = False


@functools.lru_cache(maxsize=4)
def _front_end(spec: FrontEndSpec) -> MelgramFrontEnd:
    return MelgramFrontEnd(spec)


def _local_audio(source: str) -> tuple[Path, str]:
    """The file to decode for ``source`` and the song's title: a URL is downloaded."""
    if not is_url(source):
        return Path(source), Path(source).stem
    from tagger.download import fetch_audio

    fetched = fetch_audio(source)
    return fetched.path, fetched.title


def prepare_song(source: str, setup: BatchSetup, done: DoneSongs) -> PreparedSong:
    """Stage 1 for one song (see the module's docstring); never raises an expected
    failure."""
    song = PreparedSong(source)
    if is_url(source) and source in done.sources:
        song.skipped = True
        return song
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            path, song.title = _local_audio(source)
            try:
                song.audio_sha256 = audio_content_sha256(path)
                if (source, song.audio_sha256) in done:
                    song.skipped = True
                    return song
                valid: list[float] = []
                silent: list[bool] = []
                batches = list(melgram_batches(path, source, _front_end(setup.spec),
                                               setup.batch_size, valid, silent))
            except AudioError as error:  # named by the URL it came from, not the download
                raise type(error)(error.what, source, error.hint) from error
            song.melgrams = np.concatenate(batches)
            song.valid_seconds = np.array(valid, dtype=np.float64)
            song.silent = np.array(silent, dtype=bool)
        except TaggerError as error:
            song.error, song.kind = error.message, type(error).__name__
    song.warnings = tuple(str(warning.message) for warning in caught)
    return song


class ModelStage:
    """Stage 2: the model, loaded once per instance (a Ray actor, or the local engine's)."""

    def __init__(self, setup: BatchSetup) -> None:
        self.setup = setup
        self.model = MODELS[setup.task].load(setup.weights, setup.device, setup.batch_size,
                                             threads=setup.threads)

    def finish(self, song: PreparedSong) -> FinishedSong:
        finished = FinishedSong(song.source, song.audio_sha256, warnings=song.warnings,
                                error=song.error, kind=song.kind, skipped=song.skipped)
        if song.melgrams is None or song.skipped:
            return finished
        [values] = run_over_melgrams(melgram_chunks(song.melgrams, self.setup.batch_size),
                                     [(self.model.run_outputs, self.model.margin)])
        outputs = ModelOutputs(values, song.valid_seconds, song.silent)
        finished.result = self.model.result_from(outputs, song.source, song.title)
        return finished

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {SONG_COLUMN: _packed([self.finish(song) for song in _unpacked(batch[SONG_COLUMN])])}


@dataclass(frozen=True)
class SongOutcome:
    """What the run's summary counts of one song."""

    status: str  # "tagged", "skipped" or "failed"
    seconds_of_audio: float = 0.0


def write_songs(songs: list[FinishedSong], results_dir: Path,
                setup: BatchSetup) -> list[SongOutcome]:
    """Stage 3: one part of each table for ``songs``. Raises OutputError."""
    write_part(results_dir, songs, setup.task, setup.model_sha256)
    return [SongOutcome("skipped") if song.skipped
            else SongOutcome("failed") if song.result is None
            else SongOutcome("tagged", song.result.duration) for song in songs]


def _packed(songs: list) -> np.ndarray:
    """Songs as a column Ray moves as Arrow binary: pickled, their arrays out of band."""
    column = np.empty(len(songs), dtype=object)
    column[:] = [pickle.dumps(song, protocol=5) for song in songs]
    return column


def _unpacked(column: np.ndarray) -> list:
    return [pickle.loads(song) for song in column]  # written by _packed in this run


def prepare_batch(batch: dict[str, np.ndarray], setup: BatchSetup,
                  done: DoneSongs) -> dict[str, np.ndarray]:
    return {SONG_COLUMN: _packed([prepare_song(str(source), setup, done)
                                  for source in batch["source"]])}


def write_batch(batch: dict[str, np.ndarray], results_dir: Path,
                setup: BatchSetup) -> dict[str, np.ndarray]:
    outcomes = write_songs(_unpacked(batch[SONG_COLUMN]), results_dir, setup)
    return {"status": np.array([o.status for o in outcomes]),
            "seconds_of_audio": np.array([o.seconds_of_audio for o in outcomes])}
