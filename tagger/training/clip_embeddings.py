"""Per-second embeddings of the genre clips through the bundled backbones, computed once.

Each clip goes through the product's own path (``clip_melgrams``: decode, 16 kHz, the
card's log-mel front end, silent seconds dropped; each backbone as the exported graph's
torch module, ``PrunedMusiCNN`` with ``windowed_pool``, over the clip as one run), so a
head trained on these embeddings sees exactly what tagging computes. They are kept in a
cache folder, one file per clip, under a digest of the backbones' weights.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tagger.cards import bundled_weights_path, read_card
from tagger.checkpoints import load_checkpoint
from tagger.datasets.melgrams import clip_melgrams, default_cache_dir
from tagger.datasets.vocabulary import GenreClip

BACKBONES = ("musicnn-msd", "musicnn-mtt")
FRONT_END_MODEL = "genre-musicnn11"  # whose card's front end the backbones were trained with


def default_embeddings_dir() -> Path:
    return default_cache_dir().parent / "embeddings"


def weights_digest() -> str:
    """What the embeddings depend on: the backbones' weights."""
    digest = hashlib.sha256()
    for name in BACKBONES:
        digest.update(bundled_weights_path(name).read_bytes())
    return digest.hexdigest()[:16]


def embedding_file(cache: Path, clip: GenreClip) -> Path:
    return cache / weights_digest() / clip.source / f"{clip.key.split(':', 1)[1]}.npz"


def compute_embeddings(clips: list[GenreClip], cache: Path,
                       on_clip: Callable[[int, int, float], None] | None = None) -> None:
    """Each clip's per-second embeddings (``<backbone>_emb``, 200 each) into ``cache``, for
    the clips not there yet; ``on_clip(done, missing, seconds)`` reports progress."""
    from tagger.backends.graph import windowed_pool
    from tagger.backends.pruned import PrunedMusiCNN
    from tagger.features import MelgramFrontEnd

    missing = [c for c in clips if not embedding_file(cache, c).is_file()]
    if not missing:
        return
    card, _ = read_card(bundled_weights_path(FRONT_END_MODEL))
    spec = card.front_end
    assert spec is not None
    front_end = MelgramFrontEnd(spec)
    models = [PrunedMusiCNN(load_checkpoint(bundled_weights_path(name)).model.eval()).eval()
              for name in BACKBONES]
    started = time.perf_counter()
    for done, clip in enumerate(missing, 1):
        melgrams = torch.from_numpy(clip_melgrams(clip.path, spec, front_end, None))
        frames, bands = melgrams.shape[1], melgrams.shape[2]
        arrays = {}
        with torch.inference_mode():
            for name, model in zip(BACKBONES, models, strict=True):
                maps = model.maps(melgrams.reshape(1, -1, bands))
                embedding = model.embed_pooled(windowed_pool(maps, frames,
                                                             spec.context_segments))
                arrays[f"{name}_emb"] = embedding.numpy().astype(np.float32)
        target = embedding_file(cache, clip)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part.npz")
        np.savez(partial, **arrays)
        partial.replace(target)
        if on_clip is not None:
            on_clip(done, len(missing), time.perf_counter() - started)


def load_embeddings(clips: list[GenreClip], cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The joined 400-d embeddings of every second, and each second's clip index."""
    x, row_clip = [], []
    for i, clip in enumerate(clips):
        with np.load(embedding_file(cache, clip)) as part:
            x.append(np.concatenate([part[f"{name}_emb"] for name in BACKBONES], axis=1))
        row_clip.append(np.full(len(x[-1]), i))
    return np.concatenate(x).astype(np.float32), np.concatenate(row_clip)
