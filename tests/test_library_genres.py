from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tagger.errors import TaggerError
from tagger.library.genres import GenrePolicy, choose_genres, tag_names
from tagger.results import SongResult

CLASSES = ["hiphop", "jazz", "rock"]


def song(rows: list[list[float]], uncertain_below: float = 0.35,
         silent: list[bool] | None = None) -> SongResult:
    probabilities = np.array(rows, dtype=np.float32)
    n = len(rows)
    return SongResult(source="s.mp3", title="s", model="m", segment_seconds=1.0,
                      valid_seconds=np.ones(n), silent=np.array(silent or [False] * n),
                      classes=CLASSES, probabilities=probabilities,
                      uncertain_below=uncertain_below)


def test_the_top_genre_then_those_that_win_enough_seconds() -> None:
    rows = [[0.8, 0.1, 0.1]] * 6 + [[0.1, 0.2, 0.7]] * 3 + [[0.1, 0.6, 0.3]]
    assert choose_genres(song(rows), GenrePolicy()).genres == ["Hip-Hop", "Rock"]
    assert choose_genres(song(rows), GenrePolicy(min_share=0.5)).genres == ["Hip-Hop"]
    assert choose_genres(song(rows), GenrePolicy(max_genres=1)).genres == ["Hip-Hop"]
    three = choose_genres(song(rows), GenrePolicy(min_share=0.1, max_genres=3))
    assert three.genres == ["Hip-Hop", "Rock", "Jazz"]
    assert three.confidence == pytest.approx(np.mean([0.8] * 6 + [0.1] * 4))


def test_an_uncertain_song_gets_no_genre_unless_forced() -> None:
    rows = [[0.34, 0.33, 0.33]] * 4
    assert choose_genres(song(rows), GenrePolicy()).genres == []
    assert choose_genres(song(rows), GenrePolicy()).reason == "uncertain"
    assert choose_genres(song(rows), GenrePolicy(force_uncertain=True)).genres == ["Hip-Hop"]
    assert choose_genres(song(rows, uncertain_below=0.0), GenrePolicy()).genres == ["Hip-Hop"]


def test_a_silent_song_gets_no_genre() -> None:
    choice = choose_genres(song([[0, 0, 0]] * 3, silent=[True] * 3), GenrePolicy())
    assert (choice.genres, choice.reason) == ([], "silent")


def test_tag_names_spell_the_classes(tmp_path: Path) -> None:
    rows = [[0.9, 0.05, 0.05]] * 3
    assert choose_genres(song(rows), GenrePolicy(names=tag_names("model"))).genres == ["hiphop"]
    mapping = tmp_path / "names.json"
    mapping.write_text(json.dumps({"hiphop": "Rap"}))
    assert choose_genres(song(rows), GenrePolicy(names=tag_names(str(mapping)))).genres == ["Rap"]
    assert tag_names(str(mapping))["rock"] == "Rock"
    mapping.write_text("[1, 2]")
    with pytest.raises(TaggerError, match="JSON object"):
        tag_names(str(mapping))
    with pytest.raises(TaggerError, match="cannot read"):
        tag_names(str(tmp_path / "missing.json"))
