"""The ``sources`` layout (several datasets, one vocabulary), k-fold, context and evaluate."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from audio_fixtures import chord, noise, write_audio
from click.testing import CliRunner
from conftest import shared_data

from tagger.cards import bundled_weights_path
from tagger.cli import main
from tagger.datasets.fourq import allmusic_genre
from tagger.datasets.layouts import detect_layout, load_dataset
from tagger.datasets.sources import discover_emotion_clips, discover_sources
from tagger.datasets.splits import TRAIN, VALID

RATE = 16000
FOURQ_TAGS = ["Classical", "Electronic; International", "Pop/Rock; Electronic", "Classical",
              "Electronic", "Jazz; Classical", "Electronic", "Classical"]


def clip(genre: str, i: int, seconds: float = 3.0):
    if genre == "classical":
        return chord(seconds, RATE, root=110 * (1 + i / 9))
    return noise(seconds, RATE, seed=i)


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def sources_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gtzan/ (clips.csv), emotify/ (labels.csv with genre) and 4q/ (AllMusic genres):
    chords are 'classical', noise is 'electronic'."""
    root = tmp_path_factory.mktemp("sources")
    gtzan_rows, emotify_rows, fourq_rows = [], [], []
    for genre in ("classical", "electronic"):
        for i in range(4):
            name = f"{genre}/{genre}.{i:05d}.flac"
            (root / "gtzan" / genre).mkdir(parents=True, exist_ok=True)
            write_audio(root / "gtzan" / name, clip(genre, i), RATE)
            gtzan_rows.append({"file": name, "genre": genre,
                               "ff_split": "valid" if i == 0 else "train"})
            name = f"{genre}/{i}.flac"
            (root / "emotify" / genre).mkdir(parents=True, exist_ok=True)
            write_audio(root / "emotify" / name, clip(genre, i + 10), RATE)
            emotify_rows.append({"file": name, "genre": genre, "valence": i / 4,
                                 "energy": 1 - i / 4, "danceability": 0.5})
    (root / "4q" / "Q1").mkdir(parents=True)
    for i, tags in enumerate(FOURQ_TAGS):
        genre = "classical" if tags.startswith("Classical") else "electronic"
        write_audio(root / "4q" / "Q1" / f"{i}.flac", clip(genre, i + 20), RATE)
        fourq_rows.append({"file": f"Q1/{i}.flac", "artist": f"artist {i // 2}",
                           "quadrant": "Q1", "valence_q": 1, "arousal_q": 1,
                           "valence_words": 0.5 + i / 100, "arousal_words": 0.5,
                           "allmusic_genres": tags})
    write_csv(root / "gtzan" / "clips.csv", gtzan_rows)
    write_csv(root / "emotify" / "labels.csv", emotify_rows)
    write_csv(root / "4q" / "labels.csv", fourq_rows)
    return root


def test_allmusic_genres_map_only_when_one_of_ours_is_named() -> None:
    assert allmusic_genre("Rap") == "hiphop"
    assert allmusic_genre("Jazz; Vocal") == "jazz"
    assert allmusic_genre("International; Reggae") == "reggae"
    assert allmusic_genre("Pop/Rock") is None
    assert allmusic_genre("Electronic; Pop/Rock") is None
    assert allmusic_genre("Blues; R&B") is None
    assert allmusic_genre("Jazz; Blues") is None


def test_sources_share_one_vocabulary_and_the_emotion_split(sources_root: Path) -> None:
    assert detect_layout(sources_root) == "sources"
    by_source, classes = discover_sources(sources_root, 0.25, 0)
    assert classes == ["classical", "electronic"]
    assert sorted(by_source) == ["4q", "emotify", "gtzan"]
    fourq = {c.path.name for c in by_source["4q"]}
    assert fourq == {"0.flac", "1.flac", "3.flac", "4.flac", "6.flac", "7.flac"}
    emotion_clips, _ = discover_emotion_clips(sources_root, 0.25, 0)
    emotion_valid = {c.path for c in emotion_clips if c.split == VALID}
    genre_valid = {c.path for s in ("4q", "emotify") for c in by_source[s] if c.split == VALID}
    genre_train = {c.path for s in ("4q", "emotify") for c in by_source[s] if c.split == TRAIN}
    assert genre_valid and genre_valid <= emotion_valid
    assert not genre_train & emotion_valid
    artists = {}
    for c in by_source["4q"]:
        artists.setdefault(c.group, set()).add(c.split)
    assert all(len(splits) == 1 for splits in artists.values())


def test_context_joins_neighbouring_seconds(sources_root: Path) -> None:
    dataset = load_dataset(sources_root, "auto", {"context": 1, "valid_share": 0.25})
    assert dataset.layout == "sources" and dataset.input_shape == (63, 128)
    assert dataset.front_end.context_segments == 1
    assert set(dataset.splits[VALID].clip_sources) == {"4q", "emotify", "gtzan"}


def retrain(root: Path, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(main, [
        "retrain", "--data", str(root), "--out", str(out), "--epochs", "4", "--batch-size", "8",
        "--lr", "3e-3", "--device", "cpu", "--valid-share", "0.25", "--gradcam-examples", "0",
        *extra])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # without rich's line wrapping


@pytest.mark.slow
def test_balanced_augmented_context_model_trains_calibrates_and_tags(
        sources_root: Path, tmp_path: Path) -> None:
    output = retrain(sources_root, tmp_path / "run", "--arch", "tf-cnn", "--context", "1",
                     "--epoch-rows", "96", "--augment", "mix=0.5", "--augment", "tilt=6",
                     "--augment", "lowpass=0.3")
    assert "emotify: second" in output and "calibration: temperature" in output
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["front_end"]["context_segments"] == 1 and card["input_shape"] == [63, 128]
    assert card["calibration"]["temperature"] > 0
    assert card["calibration"]["uncertain_below"] == 0.35
    assert set(card["evaluation"][VALID]["sources"]) == {"4q", "emotify", "gtzan"}
    assert "--augment mix=0.5" in card["training"]["command"]
    assert card["training"]["config"]["epoch_rows"] == 96
    song = write_audio(tmp_path / "probe.wav", noise(5.0, RATE, seed=99), RATE)
    tagged = CliRunner().invoke(main, [str(song), "--weights", str(tmp_path / "run"),
                                       "--json", "-", "--device", "cpu"])
    assert tagged.exit_code == 0, tagged.output
    record = json.loads(tagged.stdout)
    assert len(record["seconds"]) == 5 and record["summary"]["genre"] == "electronic"

    evaluated = CliRunner().invoke(main, [
        "evaluate", "--weights", str(tmp_path / "run"), "--data", str(sources_root),
        "--valid-share", "0.25", "--json", str(tmp_path / "eval.json"), "--device", "cpu"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "gtzan per clip" in evaluated.output
    figures = json.loads((tmp_path / "eval.json").read_text())["splits"][VALID]["summary"]
    assert figures["per_clip"]["accuracy"] == pytest.approx(
        card["evaluation"][VALID]["per_clip_accuracy"], abs=1e-4)

    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    calibrated = CliRunner().invoke(main, [
        "calibrate", "--weights", str(tmp_path / "run"), "--data", str(sources_root),
        "--valid-share", "0.25", "--uncertain-below", "0.2", "--out", str(tmp_path / "cal"),
        "--name", "calibrated", "--device", "cpu"])
    assert calibrated.exit_code == 0, calibrated.output
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before
    new_card = json.loads((tmp_path / "cal" / "model.json").read_text())
    assert new_card["name"] == "calibrated"
    assert new_card["calibration"] == {"temperature": card["calibration"]["temperature"],
                                       "uncertain_below": 0.2}
    retagged = CliRunner().invoke(main, [str(song), "--weights", str(tmp_path / "cal"),
                                         "--json", "-", "--device", "cpu"])
    assert retagged.exit_code == 0, retagged.output
    assert json.loads(retagged.stdout)["uncertain_below"] == 0.2


@pytest.mark.slow
def test_folds_keep_groups_together_and_report_every_source(
        sources_root: Path, tmp_path: Path) -> None:
    output = retrain(sources_root, tmp_path / "folds", "--folds", "2", "--epochs", "2")
    assert "2-fold cross-validation" in output
    result = json.loads((tmp_path / "folds" / "folds.json").read_text())
    assert len(result["per_fold"]["per_clip"]) == 2
    assert {"gtzan_per_clip", "emotify_per_clip", "4q_per_clip"} <= set(result["mean"])
    pooled = result["pooled"]["per_clip"]
    assert pooled["n"] == 8 + 8 + 6  # every clip held out exactly once
    assert not (tmp_path / "folds" / "model.safetensors").exists()


def test_evaluate_leaves_out_genres_the_model_does_not_know(sources_root: Path) -> None:
    first_model = bundled_weights_path("genre-gtzan10")  # GTZAN's 10 genres: no electronic
    result = CliRunner().invoke(main, ["evaluate", "--data", str(sources_root), "--weights",
                                       str(first_model), "--valid-share", "0.25",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "genre-gtzan10 on valid" in result.output
    assert "seconds of electronic (not a genre of the model)" in result.output


def test_shared_data_sources_hold_eleven_genres() -> None:
    root = shared_data("")
    if not (root / "emotify").is_dir() or not (root / "4q").is_dir():
        pytest.skip("Emotify or 4Q not in the shared data")
    by_source, classes = discover_sources(root, 0.2, 0)
    assert "electronic" in classes and len(classes) == 11
    assert {c.label for c in by_source["4q"]} <= {"blues", "classical", "country", "electronic",
                                                   "hiphop", "jazz", "reggae"}


@pytest.fixture(scope="module")
def vocabulary_root(sources_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sources_root`` with GTZAN's noise called metal (GTZAN has no electronic)."""
    import shutil

    root = tmp_path_factory.mktemp("vocabulary") / "data"
    shutil.copytree(sources_root, root)
    (root / "gtzan" / "electronic").rename(root / "gtzan" / "metal")
    for old in (root / "gtzan" / "metal").iterdir():
        old.rename(old.with_name(old.name.replace("electronic", "metal")))
    clips = root / "gtzan" / "clips.csv"
    clips.write_text(clips.read_text().replace("electronic", "metal"))
    return root


def test_vocabulary_format_trains_the_17_genre_recipe_reproducibly_and_tags(
        vocabulary_root: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from tagger.datasets.vocabulary import CLASSES

    recipe = ("--format", "vocabulary", "--epochs", "3", "--epoch-rows", "128",
              "--balance-power", "0.5", "--unfamiliar-share", "0.2",
              "--cache-dir", str(tmp_path / "embeddings"))
    output = retrain(vocabulary_root, tmp_path / "run", *recipe)
    assert "17 genres" in output and "valid all" in output
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["classes"] == list(CLASSES) and card["architecture"] == "joint"
    thresholds = card["song_genres"]["thresholds"]
    assert list(thresholds) == list(CLASSES) and all(0 < t <= 1 for t in thresholds.values())
    assert "--format vocabulary" in card["training"]["command"]
    assert "--balance-power 0.5" in card["training"]["command"]
    assert isinstance(card["song_genres"]["familiarity_below"], float)
    assert set(card["evaluation"]["valid"]["sources"]) == {"gtzan", "emotify", "4q", "all"}

    retrain(vocabulary_root, tmp_path / "again", *recipe)
    first = load_file(tmp_path / "run" / "model.safetensors")
    second = load_file(tmp_path / "again" / "model.safetensors")
    assert all((first[k] == second[k]).all() for k in first)
    again = json.loads((tmp_path / "again" / "model.json").read_text())
    assert again["song_genres"] == card["song_genres"]
    every_clip = retrain(vocabulary_root, tmp_path / "all", *recipe, "--valid-share", "0")
    assert "cross-validating the recipe over 5 group-aware folds" in every_clip
    figures = json.loads((tmp_path / "all" / "model.json").read_text())["evaluation"]
    scored = figures["cross_validation"]["sources"]  # each once; GTZAN's valid side only
    assert (scored["gtzan"]["clips"], scored["emotify"]["clips"], scored["4q"]["clips"]) == (
        2, 8, 8)

    song = write_audio(tmp_path / "probe.wav", chord(4.0, RATE, root=130), RATE)
    tagged = CliRunner().invoke(main, [str(song), "--weights", str(tmp_path / "run"),
                                       "--json", "-", "--device", "cpu"])
    assert tagged.exit_code == 0, tagged.output
    record = json.loads(tagged.stdout)
    assert record["thresholds"] == thresholds and len(record["classes"]) == 17
    assert record["familiarity_below"] == card["song_genres"]["familiarity_below"]
    assert record["summary"]["unfamiliar"] == (
        record["summary"]["familiarity"] < record["familiarity_below"])
    means = {g["genre"]: g["mean_probability"] for g in record["summary"]["genres"]}
    expected = sorted((g for g in CLASSES if means[g] >= thresholds[g]), key=lambda g: -means[g])
    assert [g["genre"] for g in record["summary"]["song_genres"]] == (
        [] if record["summary"]["unfamiliar"] else expected)


def test_vocabulary_format_refuses_settings_it_does_not_read(vocabulary_root: Path,
                                                              tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["retrain", "--data", str(vocabulary_root), "--out",
                                       str(tmp_path / "run"), "--format", "vocabulary",
                                       "--folds", "2"])
    assert result.exit_code != 0
    assert "does not take --folds" in result.output and "Traceback" not in result.output


def test_vocabulary_format_names_a_gtzan_genre_outside_gtzan(sources_root: Path,
                                                             tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["retrain", "--data", str(sources_root), "--out",
                                       str(tmp_path / "run"), "--format", "vocabulary"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "is labelled 'electronic', not one of gtzan's genres" in result.output
