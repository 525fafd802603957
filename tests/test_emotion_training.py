from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_fixtures import write_audio
from click.testing import CliRunner
from conftest import SMALL_MUSICNN, assert_one_line_error
from emotion_fixtures import RATE, bright, make_4q, make_emotify, make_genre_checkpoint

from tagger.cards import bundled_weights_path, sha256_of
from tagger.checkpoints import load_checkpoint
from tagger.cli import main
from tagger.datasets.splits import TRAIN, VALID, Dataset, Split
from tagger.errors import ModelError
from tagger.features import FrontEndSpec
from tagger.models import EmotionRegressor, EmotionTimeFrequencyCNN
from tagger.tasks import TARGETS
from tagger.training.emotion import (
    emotion_card_fields,
    evaluate_model,
    loss_weights,
    multitask_loss,
    spearman,
    train_emotion,
)
from tagger.training.options import EmotionConfig, EmotionOptions
from tagger.training.predict import predict_logits
from tagger.training.run import run_card
from tagger.training.run_folder import write_run
from tagger.training.transfer import (
    EMOTION_ARCHITECTURES,
    EMOTION_START_MODEL,
    build_emotion_model,
    init_from_genre,
    starting_point,
)

SPEC = FrontEndSpec()
CONTEXT_SPEC = FrontEndSpec(context_segments=1)
TF_SETTINGS = {"frequency_channels": 8, "time_channels": 32}


def test_spearman_matches_scipy_with_ties_and_leaves_out_nan() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 40).astype(float)
    y = x + rng.normal(size=40)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, np.nan, 3, 4], [1, 2, 100, 3, 4]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))  # constant: undefined
    assert math.isnan(spearman([1, 2], [1, 2]))


def test_missing_targets_add_nothing_to_the_loss_or_its_gradient() -> None:
    predictions = torch.tensor([[0.2, 0.5, 0.9], [0.4, 0.1, 0.3]], requires_grad=True)
    targets = torch.tensor([[0.0, float("nan"), 1.0], [1.0, 0.0, float("nan")]])
    weights = torch.tensor([1.0, 2.0, 0.5])
    loss = multitask_loss(predictions, targets, weights)
    # Per target: mean squared error over the rows that have it, then the weighted sum.
    expected = 1.0 * (0.2**2 + 0.6**2) / 2 + 2.0 * 0.1**2 + 0.5 * 0.1**2
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert predictions.grad[0, 1] == 0 and predictions.grad[1, 2] == 0
    assert predictions.grad[0, 0] != 0 and predictions.grad[1, 1] != 0
    assert torch.isfinite(predictions.grad).all()
    # A target missing from every row of the batch adds zero.
    only_valence = torch.tensor([[0.5, float("nan"), float("nan")]] * 2)
    assert multitask_loss(predictions, only_valence, weights).item() == pytest.approx(
        (0.3**2 + 0.1**2) / 2)


def test_loss_weights_bring_the_targets_to_one_scale() -> None:
    targets = np.array([[0.0, 0.4, np.nan], [1.0, 0.6, 0.5], [0.5, 0.5, 0.7]])
    weights = loss_weights(targets)
    variances = np.nanvar(targets, axis=0)
    assert weights.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(weights * variances, (weights * variances)[0], rtol=1e-5)


@pytest.mark.slow
def test_model_forward_backward_and_transfer_from_the_genre_model() -> None:
    genre_model = load_checkpoint(bundled_weights_path(EMOTION_START_MODEL))
    start = starting_point("genre")
    assert start.architecture == EMOTION_ARCHITECTURES[genre_model.card.architecture]
    assert start.spec == genre_model.card.front_end
    assert start.note["model"] == EMOTION_START_MODEL
    assert start.note["sha256"] == sha256_of(bundled_weights_path(EMOTION_START_MODEL))
    model = build_emotion_model(3, start, {"head_hidden": 16})
    assert isinstance(model, EmotionRegressor)
    genre = genre_model.model.state_dict()
    first_kernel = next(k for k, v in genre.items() if v.dim() > 1)
    assert not torch.equal(model.state_dict()[first_kernel], genre[first_kernel])
    assert init_from_genre(model, start) > 10
    state = model.state_dict()
    for key, value in genre.items():
        if not key.startswith("head."):
            assert torch.equal(state[key], value), key
    model.train()
    melgrams = torch.randn(5, *start.spec.input_shape) * 20 - 40
    output = model(melgrams)
    assert output.shape == (5, 3) and ((output > 0) & (output < 1)).all()
    output.sum().backward()
    assert model.get_parameter(first_kernel).grad.abs().sum() > 0
    assert model.head[-1].weight.grad.abs().sum() > 0


def test_transfer_refuses_a_model_of_another_task() -> None:
    with pytest.raises(ModelError, match="not a genre model"):
        starting_point("genre", bundled_weights_path("emotion-4q-emotify"))


def test_scratch_is_emotion_cnn_on_the_default_front_end() -> None:
    start = starting_point("scratch")
    assert (start.architecture, start.spec, start.backbone) == ("emotion-cnn", SPEC, None)
    assert start.note == {"from": "scratch"}


@pytest.fixture(scope="module")
def tf_genre(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny tf-cnn genre model with other than default settings and one second of context."""
    folder = tmp_path_factory.mktemp("tf-genre")
    return make_genre_checkpoint(folder / "genre.safetensors", "tf-cnn", TF_SETTINGS,
                                 CONTEXT_SPEC)


def test_transfer_from_a_tf_cnn_with_context_copies_its_backbone(tf_genre: Path) -> None:
    start = starting_point("genre", tf_genre)
    assert start.architecture == "emotion-tf-cnn" and start.spec == CONTEXT_SPEC
    assert start.spec.input_shape == (63, 128)
    assert start.model_hyperparameters({"head_hidden": 16}) == {
        "frequency_channels": 8, "frequency_pool": 8, "time_channels": 32, "dropout": 0.3,
        "head_hidden": 16}
    model = build_emotion_model(3, start, {"head_hidden": 16})
    assert isinstance(model, EmotionTimeFrequencyCNN)
    genre = load_checkpoint(tf_genre).model.state_dict()
    backbone = {k: v for k, v in genre.items() if not k.startswith("head.")}
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in backbone.items())
    assert init_from_genre(model, start) == len(backbone)
    state = model.state_dict()
    for key, value in backbone.items():
        assert torch.equal(state[key], value), key
    model.train()
    output = model(torch.randn(5, 63, 128) * 20 - 40)
    assert output.shape == (5, 3) and ((output > 0) & (output < 1)).all()
    output.sum().backward()
    assert model.frequency[2].weight.grad.abs().sum() > 0
    with pytest.raises(ModelError, match="does not fit"):
        init_from_genre(build_emotion_model(3, start, {"time_channels": 16}), start)


def synthetic_sets(seed: int = 0, shape: tuple[int, int] = (21, 128)) -> dict[str, Split]:
    """Clips whose melgrams carry their valence in their loudness pattern, some targets missing."""
    rng = np.random.default_rng(seed)
    sets = {}
    for split, n_clips in ((TRAIN, 12), (VALID, 6)):
        targets, melgrams, ids = [], [], []
        for i in range(n_clips):
            level = (i % 6) / 5
            dance = math.nan if i % 3 == 0 else level
            targets.append((level, 1 - level, dance))
            grams = rng.normal(-40, 5, (3, *shape)).astype(np.float32)
            grams[:, :, : shape[1] // 2] += 30 * level
            melgrams.append(grams)
            ids += [i] * 3
        sets[split] = Split(np.concatenate(melgrams), np.zeros(len(ids), dtype=np.int64),
                            np.array(ids), [f"x:{split}{i}" for i in range(n_clips)],
                            clip_sources=["x"] * n_clips,
                            clip_targets=np.array(targets, dtype=np.float32))
    return sets


@pytest.mark.slow
def test_training_is_seeded_learns_and_round_trips(tmp_path: Path) -> None:
    sets = synthetic_sets()
    config = EmotionConfig(epochs=3, batch_size=8, lr=3e-3, seconds_per_clip=3,
                           hyperparameters={"head_hidden": 16}, init="scratch")
    device = torch.device("cpu")
    start = starting_point("scratch")
    outcome, init = train_emotion(config, sets, start, device)
    again, _ = train_emotion(config, sets, start, device)
    model, history = outcome.model, outcome.history
    assert init == {"from": "scratch"} and outcome.embedded == {}
    assert [h.train_loss for h in history] == [h.train_loss for h in again.history]
    report, outputs = evaluate_model(model, config, sets, device)
    assert report[VALID]["per_target"]["valence"]["spearman"] > 0.5
    assert report[VALID]["per_target"]["danceability"]["clips"] == 4
    options = EmotionOptions(data=tmp_path, out=tmp_path, name="tiny-emotion", train=config)
    card = run_card(options, Dataset("x", list(TARGETS), sets, start.spec), outcome,
                    {"command": "test"}, emotion_card_fields(config, start), report)
    write_run(options, model, card, {"history": [h.train_loss for h in history]})
    assert card.task == "emotion" and card.classes == list(TARGETS)
    loaded = load_checkpoint(tmp_path)
    melgrams = torch.from_numpy(sets[VALID].features)
    with torch.inference_mode():
        np.testing.assert_allclose(loaded.model(melgrams).numpy(),
                                   model.eval()(melgrams).numpy(), atol=1e-6)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["history"]) == 3 and outputs[VALID][0].shape == (18, 3)


@pytest.mark.slow
def test_a_single_target_model_trains_on_the_clips_that_have_it(tmp_path: Path) -> None:
    config = EmotionConfig(targets=("danceability",), epochs=1, batch_size=8,
                           seconds_per_clip=2, hyperparameters={"head_hidden": 8},
                           init="genre")
    genre = make_genre_checkpoint(tmp_path / "genre.safetensors", "genre-cnn", {}, SPEC)
    outcome, init = train_emotion(config, synthetic_sets(), starting_point("genre", genre),
                                  torch.device("cpu"))
    history = outcome.history
    assert init["from"] == "genre" and outcome.model.head[-1].out_features == 1
    assert set(history[0].valid_spearman) == {"danceability"}
    assert math.isfinite(history[0].train_loss)


@pytest.mark.parametrize("genre_head", [{}, {"head_pooled": True}])
@pytest.mark.slow
def test_a_musicnn_backbone_stays_frozen_and_is_scored_as_it_tags(
    tmp_path: Path, genre_head: dict[str, bool]
) -> None:
    """musicnn shares work between neighbouring seconds: its emotion model trains the head
    alone on embeddings computed clip by clip, and is scored through the same runs that
    tagging streams. The genre model's head settings are not the emotion model's."""
    spec = load_checkpoint(bundled_weights_path("musicnn-msd")).card.front_end
    genre = make_genre_checkpoint(tmp_path / "musicnn.safetensors", "musicnn",
                                  {**SMALL_MUSICNN, **genre_head}, spec)
    start = starting_point("genre", genre)
    assert start.architecture == "emotion-musicnn"
    sets = synthetic_sets(shape=spec.input_shape)
    config = EmotionConfig(epochs=8, batch_size=8, lr=1e-2, seconds_per_clip=3,
                           hyperparameters={"head_hidden": 16})
    device = torch.device("cpu")
    outcome, init = train_emotion(config, sets, start, device)
    model, embedded = outcome.model, outcome.embedded
    assert init["frozen"] and embedded[TRAIN].features.shape == (36, 16)
    genre_state = load_checkpoint(genre).model.state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(value, genre_state[key]), key
    report, outputs = evaluate_model(model, config, sets, device, embedded=embedded)
    assert report[VALID]["per_target"]["valence"]["spearman"] > 0.5
    streamed = predict_logits(model, sets[VALID], device, 1)
    np.testing.assert_allclose(outputs[VALID][0], streamed, atol=1e-5)


@pytest.fixture(scope="module")
def emotion_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("emotion-data")
    make_4q(root / "4q", per_quadrant=4, seconds=2.0)
    make_emotify(root / "emotify", clips=6, seconds=2.0)
    return root


@pytest.mark.slow
def test_retrain_task_emotion_writes_a_checkpoint_genre_tag_emotion_uses(
    emotion_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "retrain", "--task", "emotion", "--data", str(emotion_data), "--out", str(out),
        "--epochs", "2", "--batch-size", "8", "--device", "cpu", "--valid-share", "0.3"])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model.json").read_text())
    assert card["task"] == "emotion" and card["classes"] == list(TARGETS)
    assert card["name"] == "emotion-model" and card["training"]["epochs_run"] == 2
    assert card["training"]["command"].startswith("genre-tag retrain --task emotion --data")
    assert card["training"]["layouts"] == ["4q", "emotify"]
    genre_card = load_checkpoint(bundled_weights_path(EMOTION_START_MODEL)).card
    assert card["training"]["init"]["model"] == EMOTION_START_MODEL
    assert str(bundled_weights_path(EMOTION_START_MODEL)) in card["training"]["command"]
    assert card["architecture"] == EMOTION_ARCHITECTURES[genre_card.architecture]
    assert card["input_shape"] == list(genre_card.front_end.input_shape)
    assert set(card["evaluation"][VALID]["per_target"]) == set(TARGETS)
    song = write_audio(tmp_path / "probe.wav", bright(3.0, 9), RATE)
    tagged = CliRunner().invoke(main, ["emotion", str(song), "--weights", str(out),
                                       "--json", "-", "--device", "cpu"])
    assert tagged.exit_code == 0, tagged.output
    record = json.loads(tagged.stdout)
    assert record["model"] == "emotion-model" and len(record["seconds"]) == 3


def test_retrain_task_emotion_names_a_bad_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["retrain", "--task", "emotion", "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert "no emotion data layout" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_retrain_task_emotion_starts_from_the_genre_weights_given(
    emotion_data: Path, tf_genre: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "retrain", "--task", "emotion", "--genre-weights", str(tf_genre),
        "--data", str(emotion_data), "--out", str(out), "--epochs", "1", "--batch-size", "8",
        "--device", "cpu", "--valid-share", "0.3", "--threads", "1"])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"] == "emotion-tf-cnn"
    assert card["hyperparameters"] == {"frequency_channels": 8, "frequency_pool": 8,
                                       "time_channels": 32, "dropout": 0.3, "head_hidden": 64}
    assert card["front_end"] == CONTEXT_SPEC.to_dict() and card["input_shape"] == [63, 128]
    init = card["training"]["init"]
    assert (init["from"], init["model"], init["architecture"]) == ("genre", "tiny-tf-cnn",
                                                                  "tf-cnn")
    assert init["path"] == str(tf_genre) and init["sha256"] == sha256_of(tf_genre)
    assert f"--genre-weights {tf_genre}" in card["training"]["command"]
    song = write_audio(tmp_path / "probe.wav", bright(3.0, 9), RATE)
    tagged = CliRunner().invoke(main, ["emotion", str(song), "--weights", str(out),
                                       "--json", "-", "--device", "cpu"])
    assert tagged.exit_code == 0, tagged.output
    seconds = json.loads(tagged.stdout)["seconds"]
    assert len(seconds) == 3 and all(0 < s[t] < 1 for s in seconds for t in TARGETS)


def test_a_genre_model_without_an_emotion_variant_is_refused_before_any_data(
    tmp_path: Path
) -> None:
    genre = make_genre_checkpoint(tmp_path / "uoa.safetensors", "uoa-cnn", {}, SPEC)
    result = CliRunner().invoke(main, ["retrain", "--task", "emotion", "--data", str(tmp_path),
                                       "--genre-weights", str(genre)])
    assert_one_line_error(result, str(genre), "uoa-cnn has no emotion variant",
                          "--genre-weights", "genre-cnn, tf-cnn, musicnn, joint")
    result = CliRunner().invoke(main, ["retrain", "--data", str(tmp_path),
                                       "--genre-weights", str(genre)])
    assert result.exit_code == 2 and "--genre-weights is for --task emotion" in result.stderr
