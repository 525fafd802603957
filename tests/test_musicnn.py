"""musicnn: the converted weights, the shared-work runs, and transfer to a genre model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_fixtures import chords_and_noise, noise, write_audio
from click.testing import CliRunner
from conftest import SMALL_MUSICNN
from safetensors import safe_open

from tagger.cards import bundled_weights_path
from tagger.checkpoints import load_checkpoint
from tagger.cli import main
from tagger.features import stream_runs
from tagger.models import MusiCNN, build_model

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(("name", "first_tag"), [("musicnn-msd", "rock"),
                                                 ("musicnn-mtt", "guitar")])
def test_converted_weights_give_tensorflows_logits(name: str, first_tag: str) -> None:
    """tools/convert_musicnn.py saved the original graph's logits for synthetic inputs."""
    reference = np.load(DATA / f"{name}-reference.npz")
    loaded = load_checkpoint(bundled_weights_path(name))
    assert loaded.card.task == "tags" and len(loaded.card.classes) == 50
    assert loaded.card.classes[0] == first_tag
    assert loaded.card.front_end.compression == "log10"
    with torch.no_grad():
        logits = loaded.model(torch.from_numpy(reference["inputs"])).numpy()
    np.testing.assert_allclose(logits, reference["logits"], atol=1e-4)


def _with_random_norms(model: MusiCNN) -> MusiCNN:
    """Give every BatchNorm running statistics and a scale of either sign."""
    generator = torch.Generator().manual_seed(1)
    for norm in model.modules():
        if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
            size = norm.num_features
            norm.weight.data = torch.randn(size, generator=generator)
            norm.bias.data = torch.randn(size, generator=generator)
            norm.running_mean = torch.randn(size, generator=generator)
            norm.running_var = torch.rand(size, generator=generator) + 0.5
    return model


@pytest.mark.parametrize("frames", [5, 300, 1100])
def test_eval_front_end_shortcut_matches_the_layers(frames: int) -> None:
    """In eval mode the front end pools before ReLU and BatchNorm, a few seconds at a time;
    it must give what the layers give one after another, for scales of either sign and
    lengths shorter than a kernel or longer than a chunk."""
    torch.manual_seed(0)
    model = _with_random_norms(MusiCNN(3, (189, 96), **SMALL_MUSICNN)).eval()
    assert any((block.norm.weight < 0).any() for block in model.frontend)
    x = torch.randn(2, frames, 96)
    with torch.no_grad():
        shortcut = model.feature_maps(x)
        image = model.input_norm(x.unsqueeze(1))
        layers = torch.cat([block(image) for block in model.frontend], dim=1)
    torch.testing.assert_close(shortcut[:, : layers.shape[1]], layers, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_streamed_runs_give_the_whole_songs_outputs(batch_size: int) -> None:
    """Runs carry enough neighbours that a song tagged in pieces is tagged as if whole."""
    torch.manual_seed(0)
    frames, context = 30, 1
    model = MusiCNN(3, (frames * 3, 96), **SMALL_MUSICNN).eval()
    seconds = torch.rand(11, frames, 96) * 3
    margin = model.run_margin(context, frames)
    assert margin == context + 3  # 73 frames of reach on either side
    with torch.no_grad():
        whole = model.forward_run(seconds, 0, len(seconds), context)
        batches = (part.numpy() for part in seconds.split(batch_size))
        streamed = torch.cat([model.forward_run(torch.from_numpy(run), start, count, context)
                              for run, start, count in stream_runs(batches, margin)])
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=1e-4)
    # Sharing the maps is not the same as separate windows: frames see real neighbours.
    with torch.no_grad():
        windows = model(torch.cat([seconds[4:7].reshape(1, -1, 96)]))
    assert not torch.allclose(windows, whole[5:6], atol=1e-4)


def test_a_head_on_pooled_maps_reads_them_beside_the_embedding() -> None:
    """``head_pooled`` appends the BatchNormed max and mean of every channel to the dense
    layer's output, which stays as it was; a joint passes it to the members that take it."""
    torch.manual_seed(0)
    plain = _with_random_norms(MusiCNN(3, (189, 96), **SMALL_MUSICNN)).eval()
    pooling = MusiCNN(3, (189, 96), **SMALL_MUSICNN, head_pooled=True).eval()
    pooling.load_state_dict({k: v for k, v in plain.state_dict().items()
                             if not k.startswith("head.")}, strict=False)
    normed: list[torch.Tensor] = []
    plain.pool_norm.register_forward_hook(lambda _, inputs, output: normed.append(output))
    x = torch.rand(2, 189, 96) * 3
    with torch.no_grad():
        embedding, wide = plain.embed(x), pooling.embed(x)
    width = embedding.shape[1]
    assert wide.shape == (2, width + normed[0].shape[1]) == (2, pooling.head.in_features)
    torch.testing.assert_close(wide[:, :width], embedding)
    torch.testing.assert_close(wide[:, width:], normed[0])
    members = [{"architecture": "musicnn", "hyperparameters": SMALL_MUSICNN},
               {"architecture": "genre-cnn", "hyperparameters": {}}]
    joint = build_model("joint", 3, (189, 96), {"members": members, "head_pooled": True})
    assert joint.members[0].head_pooled
    with pytest.raises(ValueError, match="head_pooled needs a member that takes it"):
        build_model("joint", 3, (189, 96), {"members": members[1:] * 2, "head_pooled": True})


def test_a_tags_model_is_not_a_genre_tagger(song_mp3: Path) -> None:
    result = CliRunner().invoke(main, [str(song_mp3), "--weights",
                                       str(bundled_weights_path("musicnn-msd")), "--device", "cpu"])
    assert result.exit_code != 0
    assert "is a tags model, not a genre model" in result.output
    assert "genre-tag retrain --init-weights" in result.output


@pytest.mark.slow
@pytest.mark.parametrize(("backbones", "head", "head_key", "head_inputs"), [
    (["musicnn-msd"], [], "head.weight", 200),
    (["musicnn-msd", "musicnn-mtt"], [], "head.weight", 400),
    (["musicnn-msd", "musicnn-mtt"], ["head_pooled=true", "head_dropout=0.5"], "head.1.weight",
     2 * (200 + 1506)),
])
def test_frozen_transfer_trains_only_the_head(tmp_path: Path, backbones: list[str],
                                              head: list[str], head_key: str,
                                              head_inputs: int) -> None:
    """One backbone, or two side by side (``joint``), the head reading their pooled maps
    too or not: their tensors stay as they were, one new head learns from their
    embeddings, and the result tags audio."""
    root = chords_and_noise(tmp_path / "data", 5, 4.0)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "retrain", "--data", str(root), "--out", str(out),
        *(word for name in backbones for word in ("--init-weights", name)),
        *(word for setting in head for word in ("--hparam", setting)),
        "--freeze-backbone", "--epochs", "5", "--lr", "0.01", "--device", "cpu",
        "--gradcam-examples", "0"])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model.json").read_text())
    joint = len(backbones) > 1
    assert card["architecture"] == ("joint" if joint else "musicnn")
    assert card["input_shape"] == [189, 96] and card["front_end"]["compression"] == "log10"
    assert card["training"]["init"]["model"] == " + ".join(backbones)
    command = card["training"]["command"]
    assert " ".join(f"--init-weights {name}" for name in backbones) in command
    assert command.endswith("--freeze-backbone")
    assert all(f"--hparam {setting}" in command for setting in head)
    assert card["evaluation"]["valid"]["per_clip_accuracy"] == 1.0
    with safe_open(str(out / "model.safetensors"), "pt") as trained:
        for i, name in enumerate(backbones):
            prefix = f"members.{i}." if joint else ""
            with safe_open(str(bundled_weights_path(name)), "pt") as original:
                for key in original.keys():  # noqa: SIM118
                    if not key.startswith("head."):
                        assert torch.equal(trained.get_tensor(prefix + key),
                                           original.get_tensor(key)), key
        assert trained.get_tensor(head_key).shape == (2, head_inputs)
    probe = write_audio(tmp_path / "probe.wav", noise(3.0, 22050, seed=99), 22050)
    result = CliRunner().invoke(main, [str(probe), "--weights", str(out), "--json", "-",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["genre"] == "noise"


@pytest.mark.slow
def test_frozen_folds_embed_once_and_score_every_clip(tmp_path: Path) -> None:
    root = chords_and_noise(tmp_path / "data", 6, 4.0, spread=5)
    out = tmp_path / "folds"
    result = CliRunner().invoke(main, [
        "retrain", "--data", str(root), "--out", str(out), "--init-weights", "musicnn-msd",
        "--freeze-backbone", "--folds", "3", "--epochs", "5", "--lr", "0.01",
        "--device", "cpu"])
    assert result.exit_code == 0, result.output
    folds = json.loads((out / "folds.json").read_text())
    assert folds["folds"] == 3 and len(folds["per_fold"]["per_clip"]) == 3
    assert folds["pooled"]["per_clip"]["n"] == 12
    assert folds["pooled"]["per_clip"]["accuracy"] == 1.0


@pytest.mark.parametrize(("options", "message"), [
    (["--freeze-backbone"], "--freeze-backbone needs a backbone to freeze"),
    (["--init-weights", "musicnn-msd", "--init-weights", "genre-sources11"],
     "another front end than musicnn-msd"),
])
def test_backbone_options_are_refused_before_training(tmp_path: Path, options: list[str],
                                                      message: str) -> None:
    root = tmp_path / "data"
    for genre in ("a", "b"):
        (root / genre).mkdir(parents=True)
        write_audio(root / genre / "x.wav", noise(2.0, 22050, seed=1), 22050)
    result = CliRunner().invoke(main, ["retrain", "--data", str(root), *options,
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and not (tmp_path / "run").exists()
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
