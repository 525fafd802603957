"""The Ray engine: the batch stages as a Ray Data pipeline, on this machine or a cluster.

Songs stream through ``from_items`` → decoding and melgrams as CPU tasks → the model in
an actor pool (the checkpoint loaded once per actor; a GPU each with
``gpus_per_actor``) → Parquet parts written by tasks. Ray's backpressure keeps the songs
in flight, and so memory, bounded however many there are. Ray is imported here only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from tagger.batch.request import RaySettings
from tagger.batch.stages import (
    BatchSetup,
    ModelStage,
    SongOutcome,
    prepare_batch,
    write_batch,
)
from tagger.batch.tables import DoneSongs
from tagger.errors import TaggerError

INSTALL_HINT = "pip install 'genre-tag[ray]'"
# Songs per block read: one task decodes a block's songs; a few hundred thousand blocks
# at most, however long the list.
MAX_BLOCKS = 100_000


def import_ray() -> ModuleType:
    """The ray module, or a TaggerError that says how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise TaggerError("--engine ray needs Ray Data, which is not installed",
                          hint=f"install it with {INSTALL_HINT}") from error
    return ray


def run_ray(songs: list[str], setup: BatchSetup, done: DoneSongs, results_dir: Path,
            songs_per_part: int, settings: RaySettings,
            on_outcomes: Callable[[list[SongOutcome]], None]) -> None:
    """Tag ``songs`` into ``results_dir`` (a folder every node can reach) on Ray; each
    written part's outcomes go to ``on_outcomes``. A Ray this function started, it stops."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=settings.address, include_dashboard=False,
                     logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise TaggerError(f"cannot connect to the Ray cluster: {error}",
                              settings.address, "start it with 'ray start --head', or leave "
                              "out --address to run on this machine") from error
    try:
        _run_pipeline(ray, songs, setup, done, results_dir.resolve(), songs_per_part,
                      settings, on_outcomes)
    finally:
        if started:
            ray.shutdown()


def _run_pipeline(ray: ModuleType, songs: list[str], setup: BatchSetup, done: DoneSongs,
                  results_dir: Path, songs_per_part: int, settings: RaySettings,
                  on_outcomes: Callable[[list[SongOutcome]], None]) -> None:
    data = ray.data.from_items([{"source": source} for source in songs],
                               override_num_blocks=min(len(songs), MAX_BLOCKS))
    prepared = data.map_batches(prepare_batch, fn_kwargs={"setup": setup, "done": done},
                                batch_size=1, num_cpus=1)
    actor_setup = replace(setup, threads=max(1, round(settings.cpus_per_actor)))
    finished = prepared.map_batches(
        ModelStage, fn_constructor_kwargs={"setup": actor_setup},
        batch_size=settings.songs_per_model_call,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=settings.actors),
        num_cpus=settings.cpus_per_actor, num_gpus=settings.gpus_per_actor)
    written = finished.map_batches(write_batch, fn_kwargs={"results_dir": results_dir,
                                                           "setup": setup},
                                   batch_size=songs_per_part, num_cpus=0.25)
    for batch in written.iter_batches(batch_size=None, batch_format="numpy"):
        on_outcomes([SongOutcome(str(status), float(seconds)) for status, seconds
                     in zip(batch["status"], batch["seconds_of_audio"], strict=True)])
