"""Several genres per song from a model card's per-genre thresholds (issue 23), through the
real CLI on a tiny real model: JSON, terminal, tag writing and batch tables; cards without
thresholds keep one genre per song."""

from __future__ import annotations

import json
from pathlib import Path

import mutagen
import numpy as np
import pytest
import torch
from audio_fixtures import chord, synth_song, write_audio
from click.testing import CliRunner, Result
from conftest import assert_one_line_error

from tagger.cards import ModelCard
from tagger.checkpoints import save_checkpoint
from tagger.cli import main
from tagger.datasets.vocabulary import TAG_SPELLINGS
from tagger.features import FrontEndSpec
from tagger.library.genres import TAG_NAMES, GenrePolicy, choose_genres
from tagger.models import architecture_defaults, build_model
from tagger.results import SongResult

CLASSES = ["pop", "rnb", "rock", "ambient"]
# What the tiny model's head gives every second, give or take a little from the audio: its
# means over the song come out near pop 0.56, rnb 0.26, rock 0.10, ambient 0.08.
HEAD_PROBABILITIES = [0.45, 0.32, 0.15, 0.08]
POP_AND_RNB = {"pop": 0.3, "rnb": 0.2, "rock": 0.5, "ambient": 0.5}
ALL_BUT_ROCK = {"pop": 0.3, "rnb": 0.2, "rock": 0.5, "ambient": 0.05}
NOT_THE_TOP_ONE = {"pop": 0.9, "rnb": 0.2, "rock": 0.5, "ambient": 0.05}
NONE_REACHED = dict.fromkeys(CLASSES, 1.0)


def save_model(path: Path, song_genres: dict | None = None,
               calibration: dict[str, float] | None = None) -> Path:
    """A genre-cnn of a few channels whose head leans on ``HEAD_PROBABILITIES`` (its weights
    scaled down, so the audio still moves each second a little), with this card."""
    torch.manual_seed(0)
    spec = FrontEndSpec()
    hyperparameters = {**architecture_defaults("genre-cnn"), "channels": [4, 8]}
    model = build_model("genre-cnn", len(CLASSES), spec.input_shape, hyperparameters)
    with torch.no_grad():
        model.head.weight.mul_(0.02)
        model.head.bias.copy_(torch.log(torch.tensor(HEAD_PROBABILITIES)))
    card = ModelCard(name="tiny-thresholds", task="genre", classes=CLASSES,
                     architecture="genre-cnn", hyperparameters=hyperparameters, front_end=spec,
                     input_shape=spec.input_shape, calibration=calibration or {},
                     song_genres=song_genres or {})
    save_checkpoint(model, card, path)
    return path


def threshold_model(folder: Path, thresholds: dict, name: str = "model") -> Path:
    return save_model(folder / f"{name}.safetensors", {"thresholds": thresholds})


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four seconds of a beat, one of silence, three of a chord."""
    samples = np.concatenate([synth_song(4.0, 22050), np.zeros(22050, np.float32),
                              chord(3.0, 22050)])
    return write_audio(tmp_path_factory.mktemp("songs") / "song.flac", samples, 22050)


@pytest.fixture
def untagged(song: Path, tmp_path: Path) -> Path:
    """A copy of ``song`` without any genre, for tag writing."""
    copy = tmp_path / "library" / "song.flac"
    copy.parent.mkdir()
    copy.write_bytes(song.read_bytes())
    assert genres_in(copy) == []
    return copy


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu"])


def json_record(song: Path, weights: Path, *options: str) -> dict:
    result = run(str(song), "--weights", str(weights), "--json", "-", *options)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def genres_in(path: Path) -> list[str]:
    """The file's genres as mutagen reads them."""
    tags = mutagen.File(path).tags
    return list(tags.get("GENRE", [])) if tags is not None else []


def means_from_seconds(record: dict) -> dict[str, float]:
    """Each class's mean probability over the audible seconds of a JSON record."""
    rows = [second["probabilities"] for second in record["seconds"] if not second["silent"]]
    return {genre: float(np.mean([row[genre] for row in rows])) for genre in record["classes"]}


@pytest.mark.parametrize("thresholds", [ALL_BUT_ROCK, NOT_THE_TOP_ONE, POP_AND_RNB])
def test_json_song_genres_are_those_reaching_their_threshold(song: Path, tmp_path: Path,
                                                             thresholds: dict) -> None:
    record = json_record(song, threshold_model(tmp_path, thresholds))
    assert record["schema"] == "genre-tag/song/3"
    assert record["thresholds"] == thresholds
    means = means_from_seconds(record)
    expected = sorted((genre for genre in CLASSES if means[genre] >= thresholds[genre]),
                      key=lambda genre: -means[genre])
    summary = record["summary"]
    assert [found["genre"] for found in summary["song_genres"]] == expected
    assert len(expected) >= 2 and not summary["uncertain"]
    for found in summary["song_genres"]:
        assert found["threshold"] == thresholds[found["genre"]]
        assert found["mean_probability"] == pytest.approx(means[found["genre"]], abs=1e-3)
        assert found["mean_probability"] >= found["threshold"]
    assert summary["genre"] == max(means, key=means.get) == "pop"  # the top genre, as before


def test_the_terminal_shows_the_song_genres(song: Path, tmp_path: Path) -> None:
    genres = run(str(song), "--weights", str(threshold_model(tmp_path, NOT_THE_TOP_ONE)))
    assert genres.exit_code == 0, genres.output
    assert "song genres: rnb; ambient" in genres.stdout
    none = run(str(song), "--weights", str(threshold_model(tmp_path, NONE_REACHED, "none")))
    assert none.exit_code == 0, none.output
    assert "song genres: uncertain (top: pop 0.5" in none.stdout


def test_no_genre_reaching_its_threshold_is_uncertain_and_writes_nothing(
        song: Path, untagged: Path, tmp_path: Path) -> None:
    weights = threshold_model(tmp_path, NONE_REACHED)
    summary = json_record(song, weights)["summary"]
    assert summary["song_genres"] == [] and summary["uncertain"] is True
    written = run(str(untagged), "--weights", str(weights), "--write-tags")
    assert written.exit_code == 0, written.output
    assert "no genre: uncertain, top genre at 0.5" in written.stdout
    assert genres_in(untagged) == []
    forced = run(str(untagged), "--weights", str(weights), "--write-tags", "--force-uncertain")
    assert forced.exit_code == 0, forced.output
    assert genres_in(untagged) == ["Pop"]


def test_two_genres_reaching_their_thresholds_are_written(untagged: Path,
                                                          tmp_path: Path) -> None:
    weights = threshold_model(tmp_path, POP_AND_RNB)
    # --min-share is for models of one genre per song: rnb wins no second, and is written.
    written = run(str(untagged), "--weights", str(weights), "--write-tags", "--min-share", "1")
    assert written.exit_code == 0, written.output
    assert genres_in(untagged) == ["Pop", "R&B"]
    assert "(none) -> Pop; R&B" in written.stdout


def test_max_genres_caps_the_genres_written(untagged: Path, tmp_path: Path) -> None:
    weights = threshold_model(tmp_path, ALL_BUT_ROCK)
    assert run(str(untagged), "--weights", str(weights), "--write-tags").exit_code == 0
    assert genres_in(untagged) == ["Pop", "R&B"]  # max_genres stays 2 by default
    again = run(str(untagged), "--weights", str(weights), "--write-tags", "--max-genres", "3")
    assert again.exit_code == 0, again.output
    assert genres_in(untagged) == ["Pop", "R&B", "Ambient"]


@pytest.mark.parametrize(("thresholds", "fragment"), [
    ({"pop": 0.3, "rnb": 0.2, "rock": 0.5}, "no threshold for ambient"),
    ({**POP_AND_RNB, "rock": 0}, "rock has 0, not a number in (0, 1]"),
    ({**POP_AND_RNB, "pop": "x"}, "pop has 'x'"),
    ({**POP_AND_RNB, "jazz": 0.5}, "jazz is not one of its classes"),
    ({**POP_AND_RNB, "rnb": 1.5}, "rnb has 1.5"),
    ([0.3, 0.2, 0.5, 0.5], "an object of class: threshold is needed"),
])
def test_invalid_thresholds_fail_with_one_line(song: Path, tmp_path: Path, thresholds: object,
                                               fragment: str) -> None:
    weights = threshold_model(tmp_path, thresholds)
    result = run(str(song), "--weights", str(weights))
    assert_one_line_error(result, "invalid song genre settings", fragment, str(weights))


def familiar_model(folder: Path, familiarity_below: object) -> Path:
    return save_model(folder / "familiar.safetensors",
                      {"thresholds": POP_AND_RNB, "familiarity_below": familiarity_below})


def test_a_song_unlike_every_genre_gets_none_unless_forced(song: Path, untagged: Path,
                                                           tmp_path: Path) -> None:
    """The tiny model's logits are about log(HEAD_PROBABILITIES), so the log-sum-exp of the
    song's mean logits, its familiarity, is within 0.5 of 0: under 1, over -1."""
    weights = familiar_model(tmp_path, 1.0)
    record = json_record(song, weights)
    summary = record["summary"]
    assert record["familiarity_below"] == 1.0
    assert -0.5 < summary["familiarity"] < 0.5
    assert summary["unfamiliar"] and summary["uncertain"] and summary["song_genres"] == []
    shown = run(str(song), "--weights", str(weights))
    assert "song genres: unfamiliar music (top: pop" in " ".join(shown.output.split())

    written = run(str(untagged), "--weights", str(weights), "--write-tags")
    assert written.exit_code == 0, written.output
    assert "unlike every genre the model knows" in " ".join(written.output.split())
    assert genres_in(untagged) == []
    forced = run(str(untagged), "--weights", str(weights), "--write-tags", "--force-uncertain")
    assert forced.exit_code == 0, forced.output
    assert genres_in(untagged) == ["Pop"]


def test_a_familiar_song_keeps_its_genres(song: Path, tmp_path: Path) -> None:
    record = json_record(song, familiar_model(tmp_path, -1.0))
    summary = record["summary"]
    assert not summary["unfamiliar"] and summary["familiarity"] > -1.0
    assert [found["genre"] for found in summary["song_genres"]] == ["pop", "rnb"]


@pytest.mark.parametrize("level", ["x", float("inf"), True])
def test_an_invalid_familiarity_level_fails_with_one_line(song: Path, tmp_path: Path,
                                                          level: object) -> None:
    weights = familiar_model(tmp_path, level)
    result = run(str(song), "--weights", str(weights))
    assert_one_line_error(result, "invalid song genre settings", "familiarity_below must be",
                          str(weights))


def test_a_card_without_thresholds_keeps_one_genre_per_song(song: Path, untagged: Path,
                                                             tmp_path: Path) -> None:
    weights = save_model(tmp_path / "plain.safetensors", calibration={"uncertain_below": 0.5})
    record = json_record(song, weights)
    assert record["schema"] == "genre-tag/song/3" and record["thresholds"] is None
    [top] = record["summary"]["song_genres"]
    assert top["genre"] == record["summary"]["genre"] == "pop"
    assert (top["threshold"], record["summary"]["uncertain"]) == (0.5, False)
    uncertain = json_record(song, weights, "--uncertain-below", "0.9")["summary"]
    assert (uncertain["song_genres"], uncertain["uncertain"]) == ([], True)
    terminal = run(str(song), "--weights", str(weights))
    assert "song genres: pop\n" in terminal.stdout
    written = run(str(untagged), "--weights", str(weights), "--write-tags")
    assert written.exit_code == 0, written.output
    assert genres_in(untagged) == ["Pop"]  # rnb wins no second: not a further genre


def song_result(rows: list[list[float]], thresholds: dict[str, float] | None,
                classes: tuple[str, ...] = ("pop", "rnb", "rock")) -> SongResult:
    probabilities = np.array(rows, dtype=np.float64)
    n = len(rows)
    return SongResult(source="s", title="s", model="m", segment_seconds=1.0,
                      valid_seconds=np.ones(n), silent=np.zeros(n, dtype=bool),
                      classes=list(classes), probabilities=probabilities,
                      uncertain_below=0.35, thresholds=thresholds)


def test_choose_genres_spells_and_caps_the_genres_reaching_their_thresholds() -> None:
    result = song_result([[0.5, 0.3, 0.2]] * 4, {"pop": 0.6, "rnb": 0.1, "rock": 0.1})
    assert [found.genre for found in result.song_genres()] == ["rnb", "rock"]
    assert choose_genres(result, GenrePolicy()).genres == ["R&B", "Rock"]
    assert choose_genres(result, GenrePolicy(max_genres=1)).genres == ["R&B"]
    merged = ("rock", "rnb", "rock_metal_hardrock")  # two classes spelled Rock
    same_name = song_result([[0.5, 0.3, 0.2]] * 4, dict.fromkeys(merged, 0.1), merged)
    assert choose_genres(same_name, GenrePolicy()).genres == ["Rock", "R&B"]
    none = song_result([[0.5, 0.3, 0.2]] * 4, dict.fromkeys(("pop", "rnb", "rock"), 0.9))
    assert (none.song_genres(), none.no_genre_reason()) == ([], "uncertain")
    assert choose_genres(none, GenrePolicy()).reason == "uncertain"
    assert choose_genres(none, GenrePolicy(force_uncertain=True)).genres == ["Pop"]


def test_tag_names_spell_the_vocabulary_as_it_does() -> None:
    for genre, spelling in TAG_SPELLINGS.items():
        assert TAG_NAMES[genre] == spelling, genre


def test_batch_songs_hold_the_song_genres_and_refuse_an_older_schema(
        song: Path, tmp_path: Path) -> None:
    parquet = pytest.importorskip("pyarrow.parquet")
    from tagger.batch.tables import SCHEMA, SCHEMA_KEY, part_files

    weights = threshold_model(tmp_path, ALL_BUT_ROCK)
    results = tmp_path / "results"
    batch = run("batch", str(song), "--out", str(results), "--weights", str(weights))
    assert batch.exit_code == 0, batch.output
    [row] = parquet.read_table(part_files(results, "songs")[0]).to_pylist()
    record = json_record(song, weights)
    assert row["song_genres"] == [found["genre"] for found in record["summary"]["song_genres"]]
    assert SCHEMA == "genre-tag/batch/2"

    older = tmp_path / "older"
    (older / "songs").mkdir(parents=True)
    part = parquet.read_table(part_files(results, "songs")[0])
    metadata = {**part.schema.metadata, SCHEMA_KEY: b"genre-tag/batch/1"}
    parquet.write_table(part.replace_schema_metadata(metadata),
                        older / "songs" / part_files(results, "songs")[0].name)
    refused = run("batch", str(song), "--out", str(older), "--weights", str(weights))
    assert_one_line_error(refused, "genre-tag/batch/1, not genre-tag/batch/2",
                          "give a new --out folder")
