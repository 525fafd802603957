"""Run folders of either task: repeating a run from its config.json, the library API,
refusing flags of the other task and folders that are not ours, Ctrl-C, and data messages."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from audio_fixtures import chord, chords_and_noise, write_audio
from click.testing import CliRunner, Result
from conftest import assert_one_line_error
from emotion_fixtures import make_4q, make_emotify, make_genre_checkpoint

from tagger.cli import main
from tagger.datasets.audio import discover_clips
from tagger.errors import DatasetError
from tagger.features import FrontEndSpec

FAST = ["--epochs", "1", "--batch-size", "8", "--device", "cpu", "--gradcam-examples", "0"]


@pytest.fixture(scope="module")
def genres(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chords and noise, three 2-second clips each."""
    return chords_and_noise(tmp_path_factory.mktemp("genres"), 3, 2.0, 16000, ".wav", spread=6)


@pytest.fixture(scope="module")
def emotion_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """4Q and Emotify folders, and a tiny genre-cnn checkpoint to start from."""
    root = tmp_path_factory.mktemp("emotion")
    make_4q(root / "data" / "4q", per_quadrant=2, seconds=2.0)
    make_emotify(root / "data" / "emotify", clips=4, seconds=2.0)
    genre = make_genre_checkpoint(root / "genre.safetensors", "genre-cnn", {"channels": [4, 8]},
                                  FrontEndSpec())
    return root / "data", genre


def retrain(*args: str) -> Result:
    return CliRunner().invoke(main, ["retrain", *args])


def test_an_emotion_run_repeats_from_its_config(emotion_data: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    data, genre = emotion_data
    first = retrain("--task", "emotion", "--data", str(data), "--genre-weights", str(genre),
                    "--out", str(tmp_path / "a"), "--valid-share", "0.3", "--optimizer", "sgd",
                    "--scheduler", "step", "--lr", "0.01", *FAST[:6])
    assert first.exit_code == 0, first.output
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["task"] == "emotion" and config["genre_weights"] == str(genre)
    assert config["train"]["optimizer"] == "sgd"
    assert config["train"]["scheduler_settings"]["step"] == {"every": 0, "gamma": 0.1}
    again = retrain("--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b"))
    assert again.exit_code == 0, again.output
    histories = [json.loads((tmp_path / run / "metrics.json").read_text())["history"]
                 for run in ("a", "b")]
    assert [h["train_loss"] for h in histories[0]] == [h["train_loss"] for h in histories[1]]
    card = json.loads((tmp_path / "b" / "model.json").read_text())
    assert card["task"] == "emotion" and card["training"]["config"]["optimizer"] == "sgd"
    assert card["training"]["command"].startswith("genre-tag retrain --task emotion")


@pytest.mark.parametrize(("task", "flag"), [("emotion", ["--arch", "genre-cnn"]),
                                            ("emotion", ["--sweep", "optimizers"]),
                                            ("emotion", ["--augment", "tilt=3"]),
                                            ("emotion", ["--label-smoothing", "0"]),
                                            ("genre", ["--genre-weights", "x.safetensors"])])
def test_flags_of_the_other_task_are_refused(task: str, flag: list[str], tmp_path: Path) -> None:
    result = retrain("--task", task, "--data", str(tmp_path), *flag)
    other = "genre" if task == "emotion" else "emotion"
    assert result.exit_code == 2
    assert f"{flag[0]} is for --task {other}, not {task}" in result.stderr


def test_the_library_trains_from_python(genres: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from tagger.training import GenreConfig, GenreOptions
    from tagger.training import retrain as train_run

    options = GenreOptions(data=genres, out=tmp_path / "run", valid_share=0.34,
                           gradcam_examples=0,
                           train=GenreConfig(epochs=1, batch_size=8, scheduler="cosine"))
    result = train_run(options, console=Console(quiet=True))
    assert result.out == tmp_path / "run" and result.stopped == "completed"
    assert set(result.evaluation) == {"train", "valid"}
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["task"] == "genre" and config["train"]["scheduler"] == "cosine"


def test_a_folder_of_other_files_is_refused_unless_overwrite(genres: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    result = retrain("--data", str(genres), "--out", str(out), *FAST)
    assert_one_line_error(result, str(out), "not a finished genre-tag run", "notes.txt",
                          "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    result = retrain("--data", str(genres), "--out", str(out), "--overwrite", *FAST)
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "my notes\n" and (out / "model.json").is_file()


@pytest.mark.slow
def test_a_new_run_replaces_an_earlier_run_and_its_stale_files(genres: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert retrain("--data", str(genres), "--out", str(out), *FAST).exit_code == 0
    (out / "sweep" / "optimizer-sgd").mkdir(parents=True)  # as an earlier sweep left it
    (out / "sweep-optimizers.md").write_text("| optimizer |\n")
    result = retrain("--data", str(genres), "--out", str(out), "--seed", "3", *FAST)
    assert result.exit_code == 0, result.output
    assert not (out / "sweep").exists() and not (out / "sweep-optimizers.md").exists()
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == 3


def test_ctrl_c_keeps_the_run_and_exits_non_zero(genres: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from tagger.training import genre

    validate = genre.GenreRun.validate

    def interrupted_after_the_first(run: genre.GenreRun, epoch: int, *args: object) -> object:
        if epoch == 2:
            raise KeyboardInterrupt
        return validate(run, epoch, *args)

    monkeypatch.setattr(genre.GenreRun, "validate", interrupted_after_the_first)
    out = tmp_path / "run"
    result = retrain("--data", str(genres), "--out", str(out), *FAST, "--epochs", "3")
    assert result.exit_code == 130
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped"] == "interrupted" and len(metrics["history"]) == 1


def write_split_file(root: Path, rows: list[tuple[str, str, str]]) -> None:
    with open(root / "clips.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "genre", "ff_split"])
        writer.writerows(rows)


def test_no_validation_clips_says_what_to_do(tmp_path: Path) -> None:
    for genre in ("chords", "noise"):
        (tmp_path / genre).mkdir()
        write_audio(tmp_path / genre / "only.wav", chord(1.0, 16000), 16000)
    result = retrain("--data", str(tmp_path), "--out", str(tmp_path / "run"), *FAST)
    assert_one_line_error(result, "the split leaves no validation clips", "two clips or more")
    write_split_file(tmp_path, [("chords/only.wav", "chords", "train"),
                                ("noise/only.wav", "noise", "train")])
    with pytest.raises(DatasetError, match="mark some clips valid in its ff_split column"):
        discover_clips(tmp_path, 0.2, 0)


def test_split_file_rows_of_unknown_genres_are_reported(genres: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for genre in ("chords", "noise"):
        (root / genre).mkdir(parents=True)
        for clip in (genres / genre).iterdir():
            (root / genre / clip.name).write_bytes(clip.read_bytes())
    (root / "extra").mkdir()
    (root / "extra" / "polka.txt").write_text("not audio")
    rows = [(f"{g}/{c}{i}.wav", g, "valid" if i == 0 else "train")
            for g, c in (("chords", "c"), ("noise", "n")) for i in range(3)]
    write_split_file(root, [*rows, ("extra/polka.txt", "polka", "train")])
    reported: list[str] = []
    clips, _ = discover_clips(root, 0.2, 0, lambda name, error: reported.append(error or ""))
    assert len(clips) == 6
    assert len(reported) == 1 and "polka (1)" in reported[0] and "no folder of audio" in reported[0]
    # Genres spelled otherwise than the folders: the files exist, and the message says why
    # none is used.
    write_split_file(root, [(f, g.capitalize(), s) for f, g, s in rows])
    with pytest.raises(DatasetError, match="no folder of audio: Chords \\(3\\), Noise \\(3\\)"):
        discover_clips(root, 0.2, 0)
