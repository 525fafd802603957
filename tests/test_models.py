"""The models package: emotion heads give 0-1 values themselves, every name the package
had as one module is still importable from ``tagger.models``, and ``--list-archs`` names
the bundled models of each architecture from their cards."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from conftest import SMALL_MUSICNN

import tagger.models
from tagger.cli import main
from tagger.models import ARCHITECTURES, build_model

SHAPE = (21, 128)
EMOTION_SETTINGS = {
    "emotion-cnn": {},
    "emotion-tf-cnn": {},
    "emotion-musicnn": SMALL_MUSICNN,
    "emotion-joint": {"members": [{"architecture": "genre-cnn", "hyperparameters": {}},
                                  {"architecture": "tf-cnn", "hyperparameters": {}}]},
}


def test_every_emotion_architecture_is_covered() -> None:
    assert {n for n, a in ARCHITECTURES.items() if a.task == "emotion"} == set(EMOTION_SETTINGS)


@pytest.mark.parametrize("name", sorted(EMOTION_SETTINGS))
def test_the_emotion_head_itself_gives_values_between_0_and_1(name: str) -> None:
    """Whatever reads the head alone (training on frozen embeddings) gets what tagging
    gets: ``head(embed(x))`` is the model's output, and it lies in 0-1."""
    torch.manual_seed(0)
    model = build_model(name, 3, SHAPE, EMOTION_SETTINGS[name]).eval()
    x = torch.randn(4, *SHAPE) * 20 - 40
    run = torch.randn(6, *SHAPE) * 20 - 40
    with torch.no_grad():
        embedding = model.embed(x)
        torch.testing.assert_close(model(x), model.head(embedding))
        torch.testing.assert_close(model.forward_run(run, 1, 4, 1),
                                   model.head(model.embed_run(run, 1, 4, 1)))
        far = model.head(1000 * torch.randn(64, embedding.shape[1]))
    assert far.shape == (64, 3)
    assert bool(((far >= 0) & (far <= 1)).all()) and far.min() < 0.01 and far.max() > 0.99
    head_tensors = {k for k in model.state_dict() if k.startswith("head.")}
    assert head_tensors == {"head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias"}


def test_every_name_of_the_former_module_is_importable() -> None:
    names = ("ACTIVATIONS", "ARCHITECTURES", "Architecture", "Classifier", "Cnn2d", "CnnRnn",
             "EmotionCNN", "EmotionJointBackbones", "EmotionMusiCNN", "EmotionRegressor",
             "EmotionTimeFrequencyCNN", "FrequencyPooledConv", "GenreCNN", "GlobalPool",
             "ImageInput", "JointBackbones", "LseCNN", "MfccFFN", "MusiCNN", "ParallelCNN",
             "RecurrentClassifier", "TemporalConv", "TimeFrequencyCNN", "UoaCNN", "activation",
             "architecture_defaults", "build_model", "count_parameters", "prepare_for_inference")
    assert [n for n in names if not hasattr(tagger.models, n)] == []


def test_list_archs_names_each_architectures_bundled_models() -> None:
    result = CliRunner().invoke(main, ["retrain", "--list-archs"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()
            if line and not line[0].isspace() and line.split()[0] in ARCHITECTURES}
    assert set(rows) == set(ARCHITECTURES)
    assert rows["joint"].endswith("(bundled: genre-musicnn11, genre-musicnn17)")
    assert rows["genre-cnn"].endswith("(bundled: genre-gtzan10)")
    assert rows["musicnn"].endswith("(bundled: musicnn-msd, musicnn-mtt)")
    assert rows["emotion-joint"].endswith("(bundled: emotion-musicnn)")
    assert "bundled:" not in rows["lstm"] and "bundled model" not in result.output
