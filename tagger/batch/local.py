"""The local engine: the batch stages one song after another in this process, without Ray;
memory holds one song and one part's results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tagger.batch.stages import BatchSetup, ModelStage, SongOutcome, prepare_song, write_songs
from tagger.batch.tables import DoneSongs, FinishedSong


def run_local(songs: list[str], setup: BatchSetup, done: DoneSongs, results_dir: Path,
              songs_per_part: int, on_outcomes: Callable[[list[SongOutcome]], None],
              on_song: Callable[[str], None]) -> None:
    """Tag ``songs`` into ``results_dir``, a part every ``songs_per_part`` songs; each
    part's outcomes go to ``on_outcomes``, each song's source to ``on_song`` as it starts."""
    model = ModelStage(setup)
    pending: list[FinishedSong] = []
    for source in songs:
        on_song(source)
        pending.append(model.finish(prepare_song(source, setup, done)))
        if len(pending) >= songs_per_part:
            on_outcomes(write_songs(pending, results_dir, setup))
            pending = []
    if pending:
        on_outcomes(write_songs(pending, results_dir, setup))
