"""``genre-tag retrain --format vocabulary``: the 17-genre model (``datasets.vocabulary``).

One linear head on the two bundled backbones' joined per-second embeddings (computed once,
``clip_embeddings``), trained with the softset loss (``softset``): a clip's genres share its
target mass, AllMusic's Pop/Rock as the set pop/rock/metal; each genre's clips weigh
``count ** -balance_power``. A song's genres are those whose mean probability reaches the
genre's threshold, F1-optimal (among those right at least ``min_precision`` of the time) on
an inner group-aware cross-validation of the training clips; a song whose familiarity is
under the level that leaves ``unfamiliar_share`` of the known songs out there gets none.
With ``--valid-share`` above 0, one group-aware fold is held out and scored (4Q by
artist, Emotify by estimated album group, GTZAN's filtered valid side); with 0 every
labelled clip is trained on (the bundled model).
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from tagger.cards import ModelCard, bundled_weights_path, read_card
from tagger.datasets.vocabulary import CLASSES, SOURCE_VOCABULARY, read_genre_clips
from tagger.errors import DatasetError, TaggerError
from tagger.models import build_model
from tagger.training.clip_embeddings import (
    BACKBONES,
    compute_embeddings,
    default_embeddings_dir,
    load_embeddings,
)
from tagger.training.genre_folds import POP_ROCK_COLUMNS, GenreData, group_folds
from tagger.training.options import GenreOptions, RunResult, command_line
from tagger.training.run_folder import write_run
from tagger.training.softset import (
    HeadConfig,
    HeadSpec,
    clip_familiarity,
    clip_probabilities,
    f1_thresholds,
    head_logits,
    train_stack,
)
from tagger.training.transfer import Backbone, copy_backbone, load_backbones

INNER_FOLDS = 5
CV_FOLDS = 5  # the card's figures of a model trained on every clip (--valid-share 0)
SOURCES = (*SOURCE_VOCABULARY, "4q")


def head_config(options: GenreOptions) -> HeadConfig:
    config = options.train
    return HeadConfig(loss="softset", balance_power=config.balance_power, epochs=config.epochs,
                      epoch_rows=config.epoch_rows or HeadConfig.epoch_rows,
                      batch_size=config.batch_size, lr=config.lr,
                      weight_decay=config.weight_decay, label_smoothing=config.label_smoothing)


def check_options(options: GenreOptions) -> None:
    """Refuse the settings this recipe does not read, rather than ignore them."""
    config = options.train
    fixed = {"--init-weights": bool(options.init_weights), "--folds": bool(options.folds),
             "--genres": bool(options.genres), "--context": bool(options.context),
             "--optimizer": config.optimizer != "adamw",
             "--scheduler": config.scheduler != "onecycle", "--augment": bool(config.augment)}
    given = [flag for flag, set_ in fixed.items() if set_]
    if given:
        raise TaggerError(f"--format vocabulary trains its own recipe and does not take "
                          f"{', '.join(given)}",
                          hint="drop those options (see genre-tag retrain --help)")


def valid_clips(data: GenreData, valid_share: float, seed: int) -> np.ndarray:
    """The held-out clips: one of ``round(1 / valid_share)`` group-aware folds (none at 0)."""
    if valid_share <= 0:
        return np.zeros(len(data), dtype=bool)
    return group_folds(data, max(2, round(1 / valid_share)), seed) == 0


@dataclass(frozen=True)
class TrainedHead:
    weight: np.ndarray  # (classes, 400)
    bias: np.ndarray  # (classes,)
    thresholds: np.ndarray  # (classes,): of the song's mean probabilities
    familiarity_below: float | None  # the level under which a song is unfamiliar

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight.T + self.bias


def train_heads(data: GenreData, train: np.ndarray, config: HeadConfig, seed: int,
                unfamiliar_share: float, min_precision: float) -> TrainedHead:
    """The head on ``train``, its per-genre thresholds (F1-optimal among those of at least
    ``min_precision``) and familiarity level (``unfamiliar_share`` of the known songs under
    it) from ``INNER_FOLDS`` heads trained on the rest of ``train``, each scored on the
    fold it left out."""
    inner = group_folds(data, INNER_FOLDS, seed)
    specs = [HeadSpec(train)] + [HeadSpec(train & (inner != j)) for j in range(INNER_FOLDS)]
    heads = train_stack(data.x, data.row_clip, data.closed, data.partial, POP_ROCK_COLUMNS,
                        specs, config, seed)
    out_of_fold = np.full((len(data), len(CLASSES)), np.nan)
    familiarity = np.full(len(data), np.nan)
    for j in range(INNER_FOLDS):
        scored = train & (inner == j)
        if scored.any():
            rows, local = data.rows(scored)
            logits = head_logits(heads, j + 1, data.x[rows])
            out_of_fold[scored] = clip_probabilities(logits, local, int(scored.sum()))
            familiarity[scored] = clip_familiarity(logits, local, int(scored.sum()))
    known = ~np.isnan(out_of_fold[:, 0])
    level = (float(np.quantile(familiarity[known], unfamiliar_share))
             if unfamiliar_share > 0 else None)
    return TrainedHead(heads.w[0].detach().numpy().T.copy(),
                       heads.b[0, 0].detach().numpy().copy(),
                       f1_thresholds(out_of_fold[known], data.closed[known], min_precision),
                       level)


@dataclass
class Scores:
    """Songs scored by heads: mean probabilities, thresholds (each song its head's) and
    whether each is familiar enough to get genres; ``scored`` marks the songs."""

    probs: np.ndarray
    thresholds: np.ndarray
    familiar: np.ndarray
    scored: np.ndarray

    @classmethod
    def empty(cls, n_clips: int) -> Scores:
        shape = (n_clips, len(CLASSES))
        return cls(np.zeros(shape), np.ones(shape), np.ones(n_clips, dtype=bool),
                   np.zeros(n_clips, dtype=bool))

    def add(self, head: TrainedHead, data: GenreData, clips: np.ndarray) -> None:
        """Score ``clips`` with ``head``."""
        rows, local = data.rows(clips)
        logits = head.logits(data.x[rows])
        n = int(clips.sum())
        self.probs[clips] = clip_probabilities(logits, local, n)
        self.thresholds[clips] = head.thresholds
        if head.familiarity_below is not None:
            self.familiar[clips] = clip_familiarity(logits, local, n) >= head.familiarity_below
        self.scored |= clips


def cross_validated(data: GenreData, config: HeadConfig, options: GenreOptions) -> Scores:
    """Every labelled song scored by the recipe trained without its fold (``CV_FOLDS``
    group-aware folds; GTZAN's filtered valid side scored, never trained on)."""
    seed, settings = options.train.seed, options.train
    fold = group_folds(data, CV_FOLDS, seed)
    scores = Scores.empty(len(data))
    for f in range(CV_FOLDS):
        train = data.usable & (data.ff_split != "valid") & (fold != f)
        head = train_heads(data, train, config, seed, settings.unfamiliar_share,
                           settings.min_precision)
        scores.add(head, data, data.usable & (fold == f))
    return scores


def song_figures(data: GenreData, scores: Scores) -> dict[str, Any]:
    """Per source and genre, on the scored clips: the top genre is one of the clip's
    (Pop/Rock: pop, rock or metal), songs with no genre (unfamiliar or none reaching its
    threshold), genres per song, a given genre is right, and per genre recall and
    precision of the song's genres."""
    probs, scored = scores.probs, scores.scored
    chosen = (probs >= scores.thresholds) & scores.familiar[:, None]
    top = probs.argmax(1)
    rows = np.arange(len(probs))
    pop_rock = data.partial & np.isin(top, POP_ROCK_COLUMNS)
    top_right = (data.targets[rows, top] == 1) | pop_rock
    given = chosen.any(1)
    hit = (chosen & (data.targets == 1)).any(1) | (data.partial
                                                   & chosen[:, POP_ROCK_COLUMNS].any(1))

    def rate(values: np.ndarray, mask: np.ndarray) -> float | None:
        return round(float(values[mask].mean()), 4) if mask.any() else None

    figures: dict[str, Any] = {"sources": {}, "genres": {}}
    for source in (*SOURCES, "all"):
        mask = scored & (True if source == "all" else data.source == source)
        figures["sources"][source] = {
            "clips": int(mask.sum()), "top_genre_right": rate(top_right, mask),
            "no_genre": rate(~given, mask),
            "genres_per_song": rate(chosen.sum(1), mask & given),
            "given_genre_right": rate(hit, mask & given)}
    for g, genre in enumerate(CLASSES):
        positive = scored & (data.targets[:, g] == 1)
        picked = scored & chosen[:, g] & (data.closed[:, g] >= 0)
        figures["genres"][genre] = {
            "clips": int(positive.sum()), "recall": rate(chosen[:, g], positive),
            "top_recall": rate(top == g, positive),
            "precision": rate(data.closed[:, g] == 1, picked),
            "threshold": round(float(scores.thresholds[scored, g].mean()), 4)}
    return figures


def joint_model(weight: np.ndarray,
                bias: np.ndarray) -> tuple[torch.nn.Module, Backbone, tuple[int, ...]]:
    """The two bundled backbones side by side with the trained head, and its input shape."""
    backbone = load_backbones([Path(name) for name in BACKBONES])
    input_shape = read_card(bundled_weights_path(BACKBONES[0]))[0].input_shape
    model = build_model(backbone.architecture, len(CLASSES), input_shape,
                        backbone.hyperparameters)
    copy_backbone(model, backbone)
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(weight))
        model.head.bias.copy_(torch.from_numpy(bias))
    return model.eval(), backbone, input_shape


def retrain_vocabulary(options: GenreOptions, console: Console) -> RunResult:
    """One run of the 17-genre recipe into ``options.run_dir``."""
    check_options(options)
    torch.set_num_threads(options.threads or 1)
    try:
        clips = read_genre_clips(options.data)
    except (OSError, KeyError) as error:
        raise DatasetError(f"does not hold the genre sources ({error})", str(options.data),
                           "give the folder holding gtzan/, emotify/ and 4q/ "
                           "(e.g. ../shared/data)") from error
    cache = options.cache_dir or default_embeddings_dir()

    def progress(done: int, missing: int, seconds: float) -> None:
        if done % 100 == 1 or done == missing:
            console.print(f"embeddings: {done}/{missing} clips, {seconds:.0f} s",
                          highlight=False)

    compute_embeddings(clips, cache, progress)
    data = GenreData(clips, *load_embeddings(clips, cache))
    seed = options.train.seed
    valid = valid_clips(data, options.valid_share, seed)
    train = data.usable & ~valid
    if options.valid_share > 0:
        train &= data.ff_split != "valid"  # GTZAN's filtered valid side is only scored
    config = head_config(options)
    console.print(f"train: {int(train.sum())} clips; valid: {int((valid & data.usable).sum())}"
                  f" clips; {len(CLASSES)} genres", highlight=False)
    head = train_heads(data, train, config, seed, options.train.unfamiliar_share,
                       options.train.min_precision)
    model, backbone, input_shape = joint_model(head.weight, head.bias)
    evaluation: dict[str, Any] = {}
    if valid.any():
        scores = Scores.empty(len(data))
        scores.add(head, data, valid & data.usable)
        evaluation["valid"] = song_figures(data, scores)
    else:
        console.print(f"cross-validating the recipe over {CV_FOLDS} group-aware folds",
                      highlight=False)
        evaluation["cross_validation"] = song_figures(data, cross_validated(data, config,
                                                                            options))
    card = ModelCard(
        name=options.name, task="genre", classes=list(CLASSES),
        architecture=backbone.architecture, hyperparameters=backbone.hyperparameters,
        front_end=backbone.front_end, input_shape=input_shape,
        training={"data": str(options.data), "command": command_line(options),
                  "torch": torch.__version__, "python": platform.python_version(),
                  "layout": "vocabulary", "recipe": asdict(config),
                  "inner_folds": INNER_FOLDS, "init": backbone.note,
                  "clips": {"train": int(train.sum()), "valid": int((valid & data.usable).sum())}},
        evaluation=evaluation,
        calibration={"temperature": 1.0, "uncertain_below": options.train.uncertain_below},
        song_genres={"thresholds": {g: round(float(t), 4)
                                    for g, t in zip(CLASSES, head.thresholds, strict=True)},
                     **({} if head.familiarity_below is None
                        else {"familiarity_below": round(head.familiarity_below, 4)})},
    )
    write_run(options, model, card, {"evaluation": evaluation,
                                     "thresholds": card.song_genres["thresholds"]})
    for split, figures in evaluation.items():
        for source, by_source in figures["sources"].items():
            console.print(f"{split} {source}: {by_source}", highlight=False)
    return RunResult(options.run_dir, "completed", evaluation)

