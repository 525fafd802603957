from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import chords_and_noise, noise, write_audio
from click.testing import CliRunner
from conftest import shared_data

from tagger.cli import main
from tagger.datasets.audio import discover_clips
from tagger.datasets.splits import TRAIN, VALID
from tagger.errors import DatasetError


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 'genres' a CNN separates easily: chords and noise, 6 clips of 3 s each."""
    return chords_and_noise(tmp_path_factory.mktemp("dataset"), 6, 3.0)


def retrain(data: Path, out: Path, *extra: str) -> dict:
    result = CliRunner().invoke(main, ["retrain", "--data", str(data), "--out", str(out),
                                       "--epochs", "3", "--batch-size", "8", "--lr", "3e-3",
                                       "--device", "cpu", *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "model.json").read_text())


@pytest.mark.slow
def test_retrain_writes_a_checkpoint_the_tagger_uses(tiny_dataset: Path, tmp_path: Path) -> None:
    card = retrain(tiny_dataset, tmp_path / "run")
    assert card["classes"] == ["chords", "noise"]
    assert card["evaluation"][TRAIN]["clips"] == 10 and card["evaluation"][VALID]["clips"] == 2
    assert card["training"]["command"].startswith("genre-tag retrain --data")
    assert card["evaluation"][VALID]["per_clip_accuracy"] == 1.0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["history"]) == 3
    song = write_audio(tmp_path / "probe.wav", noise(2.0, 22050, seed=99), 22050)
    result = CliRunner().invoke(main, [str(song), "--weights", str(tmp_path / "run"),
                                       "--json", "-", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["genre"] == "noise"


@pytest.mark.slow
def test_the_same_seed_reproduces_every_epoch(tiny_dataset: Path, tmp_path: Path) -> None:
    histories = []
    for run in ("a", "b"):
        retrain(tiny_dataset, tmp_path / run, "--seed", "7")
        metrics = json.loads((tmp_path / run / "metrics.json").read_text())
        histories.append([(h["train_loss"], h["valid_loss"]) for h in metrics["history"]])
    assert histories[0] == histories[1]


def test_seeded_split_is_by_clip_and_stratified(tiny_dataset: Path) -> None:
    clips, genres = discover_clips(tiny_dataset, valid_share=0.34, seed=3)
    assert genres == ["chords", "noise"]
    assert len({c.path for c in clips}) == len(clips) == 12
    for genre in genres:
        assert sum(c.split == VALID and c.label == genre for c in clips) == 2
    again, _ = discover_clips(tiny_dataset, valid_share=0.34, seed=3)
    assert again == clips


def test_bad_layouts_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        discover_clips(tmp_path / "nowhere", 0.2, 0)
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a.wav").write_bytes(b"0")
    with pytest.raises(DatasetError, match="two genre sub-folders"):
        discover_clips(tmp_path, 0.2, 0)
    result = CliRunner().invoke(main, ["retrain", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_gtzan_uses_the_fault_filtered_split() -> None:
    root = shared_data("gtzan")
    clips, genres = discover_clips(root, 0.2, 0)
    assert len(genres) == 10
    assert sum(c.split == TRAIN for c in clips) == 138
    assert sum(c.split == VALID for c in clips) == 73


def test_masks_keep_shape_and_use_the_floor() -> None:
    import torch

    from tagger.training.loop import mask_spectrograms

    batch = torch.zeros(4, 21, 128)
    batch[:, 0, 0] = -80
    masked = mask_spectrograms(batch, 16, 3, torch.Generator().manual_seed(0))
    assert masked.shape == batch.shape
    assert set(np.unique(masked.numpy())) <= {-80.0, 0.0}
    assert (masked == -80).sum() > (batch == -80).sum()


def test_balanced_rows_weigh_every_genre_and_every_clip_alike() -> None:
    from tagger.datasets.splits import Split
    from tagger.training.genre import balanced_row_weights

    # genre 0: one clip of 60 rows and one of 15; genre 1: one clip of 5 rows
    clip_ids = np.concatenate([np.zeros(60), np.ones(15), np.full(5, 2)]).astype(np.int64)
    labels = np.concatenate([np.zeros(75), np.ones(5)]).astype(np.int64)
    split = Split(np.zeros((80, 2), np.float32), labels, clip_ids, ["a", "b", "c"])
    weights = balanced_row_weights(split, 2).numpy()
    per_clip = np.bincount(clip_ids, weights=weights)
    per_genre = np.bincount(labels, weights=weights)
    assert np.allclose(per_genre, per_genre[0]) and np.allclose(per_clip[:2], per_clip[0])
    assert np.isclose(per_clip[2], 2 * per_clip[0])
