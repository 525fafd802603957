"""Tiny emotion datasets in the 4Q, Emotify and NTUA-multitask layouts, from generated audio,
and tiny genre checkpoints for emotion models to start from."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
from audio_fixtures import chord, noise, synth_song, write_audio

from tagger.cards import ModelCard
from tagger.checkpoints import save_checkpoint
from tagger.features import FrontEndSpec
from tagger.models import architecture_defaults, build_model

RATE = 22050


def bright(seconds: float, seed: int) -> np.ndarray:
    """'Positive, energetic' stand-in: a beat with bass and chords."""
    return synth_song(seconds, RATE, seed=seed)


def dark(seconds: float, seed: int) -> np.ndarray:
    """'Negative, calm' stand-in: a quiet low chord with a little noise."""
    return 0.5 * chord(seconds, RATE, root=55.0 * (1 + seed / 10)) + 0.02 * noise(
        seconds, RATE, seed=seed)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


FOURQ_HEADER = ["file", "artist", "quadrant", "valence_q", "arousal_q", "valence_words",
                "arousal_words", "n_mood_words", "allmusic_genres"]


def make_4q(root: Path, per_quadrant: int = 4, seconds: float = 3.0) -> Path:
    """Q1 (positive, high) and Q3 (negative, low) clips, one artist for every two clips."""
    rows = []
    for quadrant, (valence, arousal) in {"Q1": (1, 1), "Q3": (0, 0)}.items():
        (root / quadrant).mkdir(parents=True, exist_ok=True)
        for i in range(per_quadrant):
            name = f"{quadrant}/MT{i:04d}.flac"
            samples = bright(seconds, i) if valence else dark(seconds, i)
            write_audio(root / name, samples, RATE)
            rows.append([name, f"Artist {quadrant}{i // 2}", quadrant, valence, arousal,
                         0.3 + 0.4 * valence + 0.01 * i, 0.35 + 0.3 * arousal + 0.01 * i, 3,
                         "Pop/Rock"])
    return write_csv(root / "labels.csv", FOURQ_HEADER, rows)


GEMS = ["amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power",
        "joyful_activation", "tension", "sadness"]


def make_emotify(root: Path, clips: int = 6, seconds: float = 3.0,
                 proxies: bool = False) -> Path:
    """Emotify layout; the nine GEMS fractions only, unless ``proxies`` adds the three targets."""
    rows = []
    (root / "pop").mkdir(parents=True, exist_ok=True)
    for i in range(clips):
        happy = i % 2 == 0
        name = f"pop/{i + 1}.flac"
        write_audio(root / name, bright(seconds, i) if happy else dark(seconds, i), RATE)
        fractions = {g: 0.1 for g in GEMS}
        fractions["joyful_activation"] = 0.6 + 0.01 * i if happy else 0.05 + 0.01 * i
        fractions["sadness"] = 0.05 if happy else 0.5
        fractions["calmness"] = 0.1 if happy else 0.6
        row = [name, "pop", 20, *[fractions[g] for g in GEMS]]
        if proxies:
            row += [1.0 if happy else -1.0, 1.0 if happy else -1.0, fractions["joyful_activation"]]
        rows.append(row)
    header = ["file", "genre", "n_raters", *GEMS]
    if proxies:
        header += ["valence", "energy", "danceability"]
    return write_csv(root / "labels.csv", header, rows)


def make_genre_checkpoint(path: Path, architecture: str, hyperparameters: dict[str, Any],
                          spec: FrontEndSpec, seed: int = 0) -> Path:
    """A genre checkpoint with random weights and BatchNorm statistics (so a copy shows)."""
    torch.manual_seed(seed)
    classes = ["blues", "pop", "rock"]
    model = build_model(architecture, len(classes), spec.input_shape, hyperparameters)
    with torch.no_grad():
        for buffer in model.buffers():
            if buffer.is_floating_point():
                buffer.uniform_(0.5, 1.5)
    card = ModelCard(name=f"tiny-{architecture}", task="genre", classes=classes,
                     architecture=architecture,
                     hyperparameters={**architecture_defaults(architecture), **hyperparameters},
                     front_end=spec, input_shape=spec.input_shape)
    save_checkpoint(model, card, path)
    return path
