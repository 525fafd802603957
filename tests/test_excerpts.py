"""--excerpts: a song's genres from a few excerpts spread over it, each second of them
what every-second analysis gives it."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import synth_song, write_audio
from click.testing import CliRunner

from tagger.cli import main
from tagger.inference import Tagger, excerpt_seconds, excerpt_spans


def test_excerpts_are_spread_over_the_song_within_it() -> None:
    assert excerpt_spans(180, 3, 5) == [(28, 33), (88, 93), (148, 153)]
    assert excerpt_spans(12, 2, 5) == [(0, 5), (6, 11)]
    for n_seconds in range(1, 40):
        for count in (1, 2, 5):
            spans = excerpt_spans(n_seconds, count, 5)
            assert all(0 <= start < stop <= n_seconds for start, stop in spans)
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert excerpt_spans(14, 3, 5) == [(0, 14)]
    np.testing.assert_array_equal(excerpt_seconds(20, 2, 3), [4, 5, 6, 14, 15, 16])


@pytest.fixture(scope="module")
def long_song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long")
    return write_audio(folder / "long.wav", synth_song(40.0, 16000, seed=3), 16000)


@pytest.mark.slow
def test_excerpt_seconds_are_what_every_second_analysis_gives(long_song: Path) -> None:
    full = Tagger.load(device="cpu", backend="torch")
    some = Tagger.load(device="cpu", backend="torch", excerpts=2)
    every = full.outputs(long_song, "long")
    excerpts = some.outputs(long_song, "long")
    chosen = excerpt_seconds(40, 2)
    assert len(excerpts.values) == len(every.values) == 40
    np.testing.assert_allclose(excerpts.values[chosen], every.values[chosen], atol=1e-5)
    others = np.setdiff1d(np.arange(40), chosen)
    assert excerpts.silent[others].all() and not excerpts.silent[chosen].any()
    assert some.results_key == f"{full.results_key}+excerpts2"
    result = some.tag_file(long_song)
    assert result.summary()[0].share_of_seconds > 0


def test_excerpts_need_write_tags_without_timelines(song_mp3: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    alone = runner.invoke(main, [str(song_mp3), "--excerpts", "3", "--device", "cpu"])
    assert alone.exit_code == 2 and "--excerpts is for --write-tags" in alone.output
    copy = shutil.copy(song_mp3, tmp_path / "song.mp3")
    with_json = runner.invoke(main, [str(copy), "--write-tags", "--excerpts", "3", "--json",
                                     str(tmp_path / "out.json"), "--device", "cpu"])
    assert with_json.exit_code == 2 and "without --json" in with_json.output


def test_write_tags_from_excerpts(song_mp3: Path, tmp_path: Path) -> None:
    import mutagen

    copy = Path(shutil.copy(song_mp3, tmp_path / "song.mp3"))
    result = CliRunner().invoke(main, [str(copy), "--write-tags", "--excerpts", "1",
                                       "--force-uncertain", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert mutagen.File(copy, easy=True).get("genre")
