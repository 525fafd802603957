"""What a batch run is asked to do, and what it did: no heavy imports, so the command line
can build one before anything is loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tagger.batch.sources import DEFAULT_COLUMN
from tagger.units import clock

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class RaySettings:
    """Where and how the pipeline runs: ``address`` (None: a Ray started for this run on
    this machine; ``auto`` or ``ray://HOST:PORT``: a running cluster), the model actors
    (``actors``: at most this many, None: as many as the cluster's CPUs or GPUs take),
    each with ``cpus_per_actor`` CPUs and ``gpus_per_actor`` GPUs, and the songs each
    call of an actor takes."""

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    songs_per_model_call: int = 4


@dataclass
class BatchRequest:
    sources: list[str]
    results_dir: Path
    engine: str = "local"
    task: str = "genre"
    weights: Path | None = None
    device: str = "auto"
    # Seconds per forward pass, and songs per Parquet part (a killed run loses at most
    # the parts it had not written).
    batch_size: int = 64
    songs_per_part: int = 64
    column: str = DEFAULT_COLUMN
    ray: RaySettings = field(default_factory=RaySettings)


@dataclass
class BatchSummary:
    tagged: int = 0
    skipped: int = 0
    failed: int = 0
    seconds_of_audio: float = 0.0
    wall_seconds: float = 0.0

    def add(self, status: str, seconds_of_audio: float = 0.0) -> None:
        setattr(self, status, getattr(self, status) + 1)
        self.seconds_of_audio += seconds_of_audio

    @property
    def songs_per_second(self) -> float:
        return self.tagged / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def line(self, results_dir: Path) -> str:
        """The summary as one line."""
        skipped = f", {self.skipped} already in {results_dir}" if self.skipped else ""
        failed = f", {self.failed} failed (see {results_dir / 'errors'})" if self.failed else ""
        songs = "song" if self.tagged == 1 else "songs"
        return (f"{self.tagged} {songs} tagged ({clock(self.seconds_of_audio)} of audio)"
                f"{skipped}{failed} in {clock(self.wall_seconds)}: "
                f"{self.songs_per_second:.2f} songs per second")


