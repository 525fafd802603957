"""The settings of a training run of either task: what ``config.json`` records,
``retrain --config`` repeats and the card's command spells out.

``TrainConfig`` holds what the one training loop reads (optimizer, scheduler and
its settings, early stopping, masks, seed); ``GenreConfig`` and
``EmotionConfig`` add what each task's half reads. ``GenreOptions`` and
``EmotionOptions`` wrap them with the data, the run folder and the device.
Nothing here imports torch, so the CLI can offer these names at once.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from tagger.errors import TaggerError
from tagger.tasks import EMOTION, GENRE, TARGETS

OPTIMIZERS = ("sgd", "adam", "adamw", "adagrad", "rmsprop")
SCHEDULERS = ("none", "step", "cosine", "plateau", "onecycle")
SELECTIONS = ("last", "f1", "loss")
SWEEPS = ("optimizers", "activations", "schedulers", "batch-sizes")
BATCH_SIZE = 64
DEFAULT_ARCHITECTURE = "genre-cnn"
# Each scheduler's settings: step decays the rate by ``gamma`` every ``every`` epochs (0: a
# third of the epochs); plateau by ``factor`` after ``patience`` epochs without a lower
# validation loss; onecycle warms up over ``warmup`` of the steps.
SCHEDULER_SETTINGS: dict[str, dict[str, float]] = {
    "step": {"every": 0, "gamma": 0.1}, "plateau": {"factor": 0.5, "patience": 3},
    "onecycle": {"warmup": 0.3}}
# Where an emotion model starts: a genre model's backbone, or scratch.
EMOTION_INITS = ("genre", "scratch")


@dataclass
class TrainConfig:
    """The training loop's settings, the same for both tasks."""

    epochs: int = 30
    batch_size: int = BATCH_SIZE
    optimizer: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD and RMSprop
    weight_decay: float = 1e-2
    scheduler: str = "onecycle"
    # Settings of the schedulers (SCHEDULER_SETTINGS; those given replace the defaults).
    scheduler_settings: dict[str, dict[str, float]] = field(default_factory=dict)
    # Early stopping: stop after this many epochs without a better selection metric (0: never).
    patience: int = 0
    # Which epoch's weights are kept: the last, or the best by validation macro-F1 or loss.
    select: str = "last"
    # SpecAugment-style masks on 2-D inputs: up to this many feature bins / frames.
    freq_mask: int = 16
    time_mask: int = 3
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value, choices in (("optimizer", self.optimizer, OPTIMIZERS),
                                     ("scheduler", self.scheduler, SCHEDULERS),
                                     ("select", self.select, SELECTIONS)):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r} (one of {', '.join(choices)})")
        given = self.scheduler_settings
        unknown = [f"{scheduler}.{key}" for scheduler, settings in given.items()
                   for key in settings if key not in SCHEDULER_SETTINGS.get(scheduler, {})]
        if unknown:
            raise ValueError(f"unknown scheduler settings {', '.join(unknown)}")
        self.scheduler_settings = {scheduler: {**defaults, **given.get(scheduler, {})}
                                   for scheduler, defaults in SCHEDULER_SETTINGS.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """From a ``config.json``'s ``train``; settings this version does not know are left
        out (so older and newer run folders still repeat)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class GenreConfig(TrainConfig):
    architecture: str = DEFAULT_ARCHITECTURE
    label_smoothing: float = 0.1
    class_weights: bool = True
    # Spectrogram augmentations by name (see training/augment.py), e.g. {"mix": 0.5}.
    augment: dict[str, float] = field(default_factory=dict)
    # Rows drawn per epoch, so that every genre and, within a genre, every clip weighs the
    # same (0: every row once, with class weights in the loss instead).
    epoch_rows: int = 0
    # Seconds whose top calibrated probability is below this are "uncertain".
    uncertain_below: float = 0.35
    # --format vocabulary: a genre's clips weigh (its clip count) ** -balance_power in the
    # drawn epochs (1: every genre the same; 0.5: by the square root of its clips).
    balance_power: float = 1.0
    # --format vocabulary: the share of known songs (out of fold) whose familiarity may fall
    # under the level that leaves a song unfamiliar, without a genre (0: no such level).
    unfamiliar_share: float = 0.0
    # --format vocabulary: a genre's threshold keeps at least this precision out of fold
    # (none does: the genre is never given).
    min_precision: float = 0.0
    # Train only the head, on embeddings the (transferred) backbone computes once; the
    # spectrogram masks and augmentations then do not apply.
    freeze_backbone: bool = False
    overfit_batch: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        from tagger.training.augment import Augmentation

        Augmentation.from_dict(self.augment)
        if self.freeze_backbone and self.augment:
            raise ValueError("augmentations need a trainable backbone (no --freeze-backbone)")


@dataclass
class EmotionConfig(TrainConfig):
    epochs: int = 12
    hyperparameters: dict[str, Any] = field(default_factory=lambda: {"head_hidden": 64})
    targets: tuple[str, ...] = TARGETS
    init: str = "genre"  # one of EMOTION_INITS: see training/transfer.py, starting_point
    seconds_per_clip: int = 4  # random seconds of each training clip per epoch
    backbone_lr_scale: float = 0.5  # fine-tuning: the backbone learns more slowly
    valid_seconds_per_clip: int = 8  # evenly spaced seconds per held-out clip for epoch curves

    def __post_init__(self) -> None:
        super().__post_init__()
        self.targets = tuple(self.targets)
        if self.select == "f1":
            raise ValueError("--select f1 is for genre models; emotion models keep the last "
                             "epoch or the best by validation loss")
        unknown = set(self.targets) - set(TARGETS)
        if unknown or not self.targets:
            raise ValueError(f"emotion targets are some of {', '.join(TARGETS)}")
        if self.init not in EMOTION_INITS:
            raise ValueError(f"unknown init {self.init!r} (one of {', '.join(EMOTION_INITS)})")


@dataclass
class RetrainOptions:
    """A training run of ``task``: the data, the run folder and the loop's ``train``."""

    task: ClassVar[str]
    data: Path
    out: Path | None = None  # None: runs/TASK
    name: str = ""  # "": TASK-model
    valid_share: float = 0.2  # share of clips (or artists) held out where no split is given
    cache_dir: Path | None = None
    device: str = "auto"
    threads: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        self.out = Path(self.out or f"runs/{self.task}")
        self.name = self.name or f"{self.task}-model"

    @property
    def run_dir(self) -> Path:
        assert self.out is not None
        return self.out

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"task": self.task, **asdict(self)}
        for key, value in data.items():
            if isinstance(value, Path):
                data[key] = str(value)
            elif isinstance(value, list) and value and isinstance(value[0], Path):
                data[key] = [str(v) for v in value]
        return data


@dataclass
class GenreOptions(RetrainOptions):
    task: ClassVar[str] = GENRE
    layout: str = "auto"
    features: str | None = None  # course: melgrams|mfccs; ntua: mel|chroma|fused
    max_frames: int | None = None
    context: int = 0  # audio and sources layouts: neighbouring seconds on each side
    genres: list[str] | None = None  # sources layout: the vocabulary to keep
    # Start from these checkpoints' backbones (side by side when several), architecture,
    # settings and front end.
    init_weights: list[Path] = field(default_factory=list)
    folds: int = 0  # k-fold cross-validation over train + valid instead of one run (0: off)
    gradcam_examples: int = 2
    tsne: bool = False
    train: GenreConfig = field(default_factory=GenreConfig)


@dataclass
class EmotionOptions(RetrainOptions):
    task: ClassVar[str] = EMOTION
    # The genre checkpoint whose backbone, settings and front end the model starts from
    # (None: the bundled one).
    genre_weights: Path | None = None
    train: EmotionConfig = field(default_factory=EmotionConfig)


@dataclass
class RunResult:
    """What a ``retrain`` wrote: its run folder, how training ended and the figures."""

    out: Path
    stopped: str  # "completed", "early stopping" or "interrupted"
    evaluation: dict[str, Any]


OPTIONS: dict[str, type[GenreOptions] | type[EmotionOptions]] = {GENRE: GenreOptions,
                                                                  EMOTION: EmotionOptions}
CONFIGS: dict[str, type[GenreConfig] | type[EmotionConfig]] = {GENRE: GenreConfig,
                                                               EMOTION: EmotionConfig}
PATHS = ("data", "out", "cache_dir", "genre_weights")


def options_from_dict(data: dict[str, Any]) -> GenreOptions | EmotionOptions:
    """Options from a ``config.json`` (one without ``task`` is a genre run's)."""
    values = dict(data)
    task = values.pop("task", GENRE)
    if task not in OPTIONS:
        raise ValueError(f"unknown task {task!r} (one of {', '.join(OPTIONS)})")
    values["train"] = CONFIGS[task].from_dict(values.get("train", {}))
    for key in PATHS:
        if values.get(key) is not None:
            values[key] = Path(values[key])
    if "init_weights" in values:
        given = values["init_weights"] or []
        values["init_weights"] = [Path(p) for p in ([given] if isinstance(given, str)
                                                    else given)]
    return OPTIONS[task](**values)


def settings_of(task: str) -> tuple[set[str], set[str]]:
    """The names of the run settings and of the training settings of ``task``."""
    return {f.name for f in fields(OPTIONS[task])}, {f.name for f in fields(CONFIGS[task])}


def read_config(path: Path) -> dict[str, Any]:
    """The settings an earlier run recorded in its ``config.json``."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise TaggerError(f"not a readable run configuration: {error}", str(path),
                          "pass the config.json of an earlier run") from error


# The command line's name of each setting that has one (others live in config.json only).
FLAGS = {
    "data": "--data", "out": "--out", "layout": "--format", "features": "--features",
    "valid_share": "--valid-share", "max_frames": "--max-frames", "cache_dir": "--cache-dir",
    "name": "--name", "device": "--device", "threads": "--threads",
    "gradcam_examples": "--gradcam-examples", "context": "--context", "folds": "--folds",
    "init_weights": "--init-weights", "genre_weights": "--genre-weights",
    "genres": "--genres", "tsne": "--tsne", "architecture": "--arch", "epochs": "--epochs",
    "batch_size": "--batch-size", "optimizer": "--optimizer", "lr": "--lr",
    "momentum": "--momentum", "weight_decay": "--weight-decay", "scheduler": "--scheduler",
    "patience": "--patience", "select": "--select", "label_smoothing": "--label-smoothing",
    "class_weights": "--class-weights", "freq_mask": "--freq-mask", "time_mask": "--time-mask",
    "augment": "--augment", "epoch_rows": "--epoch-rows", "uncertain_below": "--uncertain-below",
    "freeze_backbone": "--freeze-backbone", "overfit_batch": "--overfit-batch",
    "hyperparameters": "--hparam", "seed": "--seed", "balance_power": "--balance-power",
    "unfamiliar_share": "--unfamiliar-share", "min_precision": "--min-precision",
}


def _words(key: str, value: Any) -> list[str]:
    """How the command line spells one setting."""
    flag = FLAGS[key]
    if key == "class_weights":
        return [flag if value else "--no-class-weights"]
    if isinstance(value, bool):
        return [flag] if value else []
    if key == "genres":
        return [flag, ",".join(value)] if value else []
    if isinstance(value, dict):
        return [word for k, v in value.items()
                for word in (flag, f"{k}={json.dumps(v) if key == 'hyperparameters' else v}")]
    if isinstance(value, list):
        return [word for item in value for word in (flag, str(item))]
    return [] if value is None else [flag, str(value)]


def command_line(options: RetrainOptions) -> str:
    """The retrain command with every setting spelled out, so a run can be repeated."""
    words = ["genre-tag", "retrain"] + (["--task", options.task] if options.task != GENRE
                                        else [])
    for settings in (options, options.train):
        for item in fields(settings):
            if item.name in FLAGS:
                words += _words(item.name, getattr(settings, item.name))
    return shlex.join(words)
