"""Model architectures, built by name from the hyper-parameters a checkpoint carries.

``base``: what every model is (``Classifier``: ``head(embed(x))``) and shared pieces;
``registry``: the architectures by name, ``build_model`` and ``prepare_for_inference``;
``musicnn`` and ``joint``: the bundled models' architectures (musicnn backbones, side by
side); ``homegrown``: the project's own CNNs; ``course``: the course replicas; ``heads``:
the emotion variants, whose regression heads give 0-1 values.
"""

from tagger.models.base import ACTIVATIONS, Classifier, GlobalPool, ImageInput, activation
from tagger.models.course import (
    Cnn2d,
    CnnRnn,
    LseCNN,
    MfccFFN,
    ParallelCNN,
    RecurrentClassifier,
    UoaCNN,
)
from tagger.models.heads import (
    EmotionCNN,
    EmotionJointBackbones,
    EmotionMusiCNN,
    EmotionRegressor,
    EmotionTimeFrequencyCNN,
    RegressionHead,
)
from tagger.models.homegrown import GenreCNN, TimeFrequencyCNN
from tagger.models.joint import JointBackbones
from tagger.models.musicnn import FrequencyPooledConv, MusiCNN, TemporalConv
from tagger.models.registry import (
    ARCHITECTURES,
    Architecture,
    architecture_defaults,
    build_model,
    count_parameters,
    prepare_for_inference,
)

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "Architecture",
    "Classifier",
    "Cnn2d",
    "CnnRnn",
    "EmotionCNN",
    "EmotionJointBackbones",
    "EmotionMusiCNN",
    "EmotionRegressor",
    "EmotionTimeFrequencyCNN",
    "FrequencyPooledConv",
    "GenreCNN",
    "GlobalPool",
    "ImageInput",
    "JointBackbones",
    "LseCNN",
    "MfccFFN",
    "MusiCNN",
    "ParallelCNN",
    "RecurrentClassifier",
    "RegressionHead",
    "TemporalConv",
    "TimeFrequencyCNN",
    "UoaCNN",
    "activation",
    "architecture_defaults",
    "build_model",
    "count_parameters",
    "prepare_for_inference",
]
