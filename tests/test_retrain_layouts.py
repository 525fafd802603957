"""retrain on every data layout and architecture, on small generated arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import SMALL_MUSICNN, shared_data

from tagger.cli import main
from tagger.datasets.layouts import detect_layout, load_dataset
from tagger.datasets.splits import TEST, TRAIN, VALID
from tagger.errors import DatasetError
from tagger.models import ARCHITECTURES, build_model

GENRES = ["blues", "classical", "hiphop", "rock_metal_hardrock"]


def separable(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four classes that differ in where their energy is: easy to learn, not trivial."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    features = rng.normal(size=(n, *shape)).astype(np.float32)
    flat = features.reshape(n, -1)
    width = flat.shape[1] // 4
    for i, label in enumerate(labels):
        flat[i, label * width : (label + 1) * width] += 2.0
    return features, labels


def make_course(root: Path, kind: str = "melgrams", n: int = 48) -> Path:
    shape = (21, 128) if kind == "melgrams" else (26,)
    for split, folder in ((TRAIN, "train"), (VALID, "val"), (TEST, "test")):
        features, labels = separable(n, shape, seed=len(split))
        target = root / folder / kind
        target.mkdir(parents=True)
        np.save(target / "X.npy", features)
        np.save(target / "labels.npy", np.array(GENRES)[labels])
    return root


def make_lse(root: Path, n: int = 40) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("train", "val", "test"):
        features, labels = separable(n, (80, 80, 1), seed=len(name))
        np.save(root / f"x_{name}.npy", features)
        np.save(root / f"y_{name}_num.npy", labels)
        np.save(root / f"y_{name}.npy", np.eye(4)[labels])
    return root


def make_ntua(root: Path, n: int = 24) -> Path:
    genres = ["Rock", "Psych-Rock", "Jazz", "Classical", "Soundtrack"]
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        lines = ["Id\tGenre"]
        for i in range(n):
            genre = genres[i % len(genres)]
            frames = 40 + i % 7
            array = np.random.default_rng(i).normal(size=(140, frames)).astype(np.float32)
            array[:, :] += {"Rock": 1, "Psych-Rock": 1, "Jazz": -1}.get(genre, 0)
            np.save(root / split / f"{i}.fused.full.npy", array)
            lines.append(f"{i}.fused.full.npy.gz\t{genre}")
        (root / f"{split}_labels.txt").write_text("\n".join(lines) + "\n")
    return root


def retrain(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["retrain", "--device", "cpu", *args])
    return result.exit_code, result.stderr


def test_layouts_are_detected(tmp_path: Path) -> None:
    assert detect_layout(make_course(tmp_path / "c")) == "course"
    assert detect_layout(make_lse(tmp_path / "l")) == "lse"
    assert detect_layout(make_ntua(tmp_path / "n")) == "ntua"
    (tmp_path / "a" / "rock").mkdir(parents=True)
    assert detect_layout(tmp_path / "a") == "audio"


def test_course_layout_loads_both_halves(tmp_path: Path) -> None:
    make_course(tmp_path, "melgrams")
    make_course(tmp_path / "m", "mfccs")
    melgrams = load_dataset(tmp_path, "course", {"features": "melgrams"})
    assert melgrams.classes == GENRES and melgrams.input_shape == (21, 128)
    assert melgrams.front_end is not None and set(melgrams.splits) == {TRAIN, VALID, TEST}
    mfccs = load_dataset(tmp_path / "m", "course", {"features": "mfccs"})
    assert mfccs.input_shape == (26,) and mfccs.front_end is None
    with pytest.raises(DatasetError, match="missing") as caught:
        load_dataset(tmp_path / "m", "course", {"features": "melgrams"})
    assert "X.npy" in str(caught.value)


def test_ntua_layout_merges_genres_and_holds_out_clips(tmp_path: Path) -> None:
    dataset = load_dataset(make_ntua(tmp_path), "ntua", {"features": "fused", "seed": 1})
    assert dataset.classes == ["Classical", "Jazz", "Rock"]  # Soundtrack dropped, Psych merged
    assert dataset.input_shape == (46, 140)
    train, valid = dataset.splits[TRAIN], dataset.splits[VALID]
    assert not set(train.clip_names) & set(valid.clip_names)
    assert len(dataset.splits[TEST]) == 24 - 24 // 5


def test_bad_layouts_name_what_is_missing(tmp_path: Path) -> None:
    make_lse(tmp_path / "l")
    (tmp_path / "l" / "x_val.npy").unlink()
    code, stderr = retrain("--data", str(tmp_path / "l"))
    assert code == 1 and "x_val.npy" in stderr and len(stderr.strip().splitlines()) == 1
    make_ntua(tmp_path / "n")
    (tmp_path / "n" / "train" / "3.fused.full.npy").unlink()
    code, stderr = retrain("--data", str(tmp_path / "n"))
    assert code == 1 and "3.fused.full.npy" in stderr


# Architectures built only from their settings: joined backbones need their members.
MEMBERS = {"members": [
    {"architecture": "genre-cnn", "hyperparameters": {"channels": [8, 16]}},
    {"architecture": "musicnn", "hyperparameters": SMALL_MUSICNN},
]}
SETTINGS = {"joint": MEMBERS, "emotion-joint": MEMBERS}


@pytest.mark.parametrize("name", [  # the musicnn backbones train slowly
    pytest.param(name, marks=pytest.mark.slow) if "musicnn" in name or "joint" in name
    else name for name in sorted(ARCHITECTURES)])
def test_every_architecture_learns_on_its_input_shape(name: str) -> None:
    shape = (26,) if name == "mfcc-ffn" else (21, 128)
    torch.manual_seed(0)
    model = build_model(name, 4, shape, SETTINGS.get(name, {}))
    features, labels = separable(32, shape, seed=0)
    x, y = torch.from_numpy(features), torch.from_numpy(labels).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.embed(x).shape[0] == 32


@pytest.mark.slow
def test_lse_run_with_report_and_config_repeat(tmp_path: Path) -> None:
    data, out = make_lse(tmp_path / "lse"), tmp_path / "run"
    code, stderr = retrain("--data", str(data), "--arch", "lse-cnn", "--epochs", "3",
                           "--batch-size", "16", "--optimizer", "sgd", "--lr", "0.05",
                           "--scheduler", "none", "--select", "f1", "--out", str(out))
    assert code == 0, stderr
    for name in ("model.safetensors", "model.json", "metrics.json", "config.json", "report.md",
                 "pictures/curves.png", "pictures/confusion-test.png",
                 "pictures/embeddings-pca.png", "pictures/gradcam/classical.png"):
        assert (out / name).is_file(), name
    card = json.loads((out / "model.json").read_text())
    assert card["front_end"] is None and card["input_shape"] == [80, 80]
    assert card["evaluation"][TEST]["per_spectrogram_accuracy"] > 0.5
    code, stderr = retrain("--config", str(out / "config.json"), "--out", str(tmp_path / "again"))
    assert code == 0, stderr
    first = json.loads((out / "metrics.json").read_text())["history"]
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())["history"]
    assert [h["train_loss"] for h in first] == [h["train_loss"] for h in again]
    # A model trained on precomputed features cannot tag audio, and says so.
    result = CliRunner().invoke(main, ["--weights", str(out), str(data / "x_val.npy")])
    assert result.exit_code == 1 and "precomputed features" in result.stderr


@pytest.mark.slow
def test_course_melgram_model_tags_audio(tmp_path: Path, song_mp3: Path) -> None:
    data, out = make_course(tmp_path / "course"), tmp_path / "run"
    code, stderr = retrain("--data", str(data), "--arch", "uoa-cnn", "--epochs", "1",
                           "--out", str(out), "--gradcam-examples", "0")
    assert code == 0, stderr
    result = CliRunner().invoke(main, ["--weights", str(out), str(song_mp3), "--json", "-",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["classes"] == GENRES


@pytest.mark.slow
def test_early_stopping_and_overfitting_one_batch(tmp_path: Path) -> None:
    data = make_course(tmp_path / "course", "mfccs", n=64)
    out = tmp_path / "stop"
    code, stderr = retrain("--data", str(data), "--arch", "mfcc-ffn", "--epochs", "40",
                           "--lr", "0.5", "--optimizer", "sgd", "--patience", "2",
                           "--select", "loss", "--out", str(out))
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped"] == "early stopping" and len(metrics["history"]) < 40
    assert metrics["kept_epoch"] == len(metrics["history"]) - 2
    out = tmp_path / "overfit"
    code, stderr = retrain("--data", str(data), "--arch", "mfcc-ffn", "--overfit-batch",
                           "--epochs", "100", "--batch-size", "8", "--activation", "relu",
                           "--label-smoothing", "0", "--weight-decay", "0", "--out", str(out))
    assert code == 0, stderr
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history[-1]["train_accuracy"] == 1.0 and history[-1]["train_loss"] < 0.1


@pytest.mark.slow
def test_sweep_writes_a_comparison_table(tmp_path: Path) -> None:
    data, out = make_course(tmp_path / "course", "mfccs"), tmp_path / "sweep"
    code, stderr = retrain("--data", str(data), "--arch", "mfcc-ffn", "--epochs", "2",
                           "--sweep", "optimizers", "--out", str(out))
    assert code == 0, stderr
    rows = json.loads((out / "sweep-optimizers.json").read_text())
    assert [r["optimizer"] for r in rows] == ["sgd", "adam", "adamw", "adagrad", "rmsprop"]
    assert all(0 <= r["test_accuracy"] <= 1 and r["seconds_per_epoch"] > 0 for r in rows)
    assert "| optimizer |" in (out / "sweep-optimizers.md").read_text()
    code, stderr = retrain("--data", str(data), "--arch", "lse-cnn", "--sweep", "activations",
                           "--features", "melgrams")
    assert code == 1 and "no activation setting" in stderr


def test_wrong_settings_are_usage_errors(tmp_path: Path) -> None:
    data = make_course(tmp_path / "course", "mfccs")
    code, stderr = retrain("--data", str(data), "--arch", "mfcc-ffn", "--hparam", "pooling=true")
    assert code == 1 and "takes no pooling" in stderr
    code, _ = retrain("--data", str(data), "--optimizer", "lbfgs")
    assert code == 2


@pytest.mark.slow
def test_course_mfcc_half_trains_on_the_shared_data(tmp_path: Path) -> None:
    data = shared_data("music_genre_data_di")
    code, stderr = retrain("--data", str(data), "--features", "mfccs", "--arch", "mfcc-ffn",
                           "--epochs", "2", "--batch-size", "16", "--out", str(tmp_path / "r"))
    assert code == 0, stderr
    card = json.loads((tmp_path / "r" / "model.json").read_text())
    assert card["classes"] == GENRES
    assert card["evaluation"][TEST]["rows"] == 1376


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_inference_preparation_keeps_the_outputs(name: str) -> None:
    import copy

    from tagger.models import prepare_for_inference

    shape = (26,) if name == "mfcc-ffn" else (21, 128)
    torch.manual_seed(0)
    model = build_model(name, 4, shape, SETTINGS.get(name, {}))
    with torch.no_grad():  # give BatchNorm layers statistics of their own
        for _ in range(3):
            model(torch.randn(16, *shape) * 5)
    model.eval()
    x = torch.randn(8, *shape)
    prepared = prepare_for_inference(copy.deepcopy(model))
    with torch.inference_mode():
        torch.testing.assert_close(prepared(x), model(x), atol=1e-5, rtol=1e-4)
    fused = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in prepared.modules())
    if name in ("genre-cnn", "uoa-cnn", "cnn2d"):
        assert fused < sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                           for m in model.modules())


def test_ctrl_c_keeps_the_epochs_trained_so_far(tmp_path: Path) -> None:
    from tagger.devices import select_device
    from tagger.training.genre import train_classifier
    from tagger.training.options import GenreConfig

    dataset = load_dataset(make_course(tmp_path / "c", "mfccs"), "course", {"features": "mfccs"})

    def interrupt_after_two(record: object) -> None:
        if record.epoch == 2:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    config = GenreConfig(architecture="mfcc-ffn", epochs=10, batch_size=16, select="f1")
    outcome = train_classifier(config, dataset, select_device("cpu"), interrupt_after_two)
    assert outcome.stopped == "interrupted"
    assert len(outcome.history) == 2 and outcome.kept_epoch in (1, 2)


def test_metrics_report_macro_and_micro_averages() -> None:
    from tagger.training.metrics import classification_report

    truth, predicted = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    report = classification_report(truth, predicted, ["a", "b", "c"])
    assert report["accuracy"] == report["micro_f1"] == pytest.approx(0.6)
    assert report["macro_precision"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert report["macro_recall"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
