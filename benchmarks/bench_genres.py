"""Today's genre recipe against the recommended 17-genre default (issue 23), side by side.

Run: python benchmarks/bench_genres.py --data ../shared/data [--cache DIR] [--seeds 0 1 2]

Step 1 computes each clip's per-second features once through the product's own path
(``clip_melgrams``: decode, 16 kHz, the card's log-mel front end, silent seconds dropped;
each bundled backbone as the exported graph's torch module, ``PrunedMusiCNN`` with
``windowed_pool``, over the clip as one run) and caches them in ``--cache`` (default: the
user cache), one file per clip, keyed by the backbones' weights: about 20 minutes on two
loaded cores, then seconds. Step 2 is a group-aware cross-validation (``genre_cv``) of both
recipes on the same folds:

- today: the bundled head's recipe, softmax over 11 genres on today's 750 labelled clips,
  temperature 0.7814, uncertain under 0.35;
- softset-sqrt: softmax over the 17 genres of ``tagger.datasets.vocabulary`` with the
  softset loss, epochs balanced by the square root of each label's clips, per-genre F1
  thresholds from an inner cross-validation of the training folds.

Each genre is also held out in turn (its clips out of training, its output masked) to count
how many of its songs still get a genre. It prints the tables and writes them, with the
command, date, machine and commit, to benchmarks/results/bench_genres.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import platformdirs
import torch
from bench_library_scale import genre_tag_commit, machine
from genre_cv import CVResult, GenreData, cross_validate
from genre_heads import HeadConfig
from genre_tables import class_table, holdout_summary, source_table, versus

from tagger.cards import bundled_weights_path, read_card
from tagger.checkpoints import load_checkpoint
from tagger.datasets.melgrams import clip_melgrams
from tagger.datasets.vocabulary import GenreClip, read_genre_clips
from tagger.errors import TaggerError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_genres.json"
BACKBONES = ("musicnn-msd", "musicnn-mtt")
RECIPES = {"today": HeadConfig(loss="softmax"),
           "softset-sqrt": HeadConfig(loss="softset", balance_power=0.5)}


def weights_digest() -> str:
    """What the cached features depend on: the two backbones' weights."""
    digest = hashlib.sha256()
    for name in BACKBONES:
        digest.update(bundled_weights_path(name).read_bytes())
    return digest.hexdigest()[:16]


def feature_file(cache: Path, clip: GenreClip) -> Path:
    return cache / clip.source / f"{clip.key.split(':', 1)[1]}.npz"


def compute_features(clips: list[GenreClip], cache: Path) -> None:
    """Each clip's per-second embeddings (``<backbone>_emb``, 200 each) and tag logits
    (``<backbone>_tags``, 50 each) into ``cache``, for the clips not there yet."""
    from tagger.backends.graph import windowed_pool
    from tagger.backends.pruned import PrunedMusiCNN
    from tagger.features import MelgramFrontEnd

    missing = [c for c in clips if not feature_file(cache, c).is_file()]
    if not missing:
        return
    torch.set_num_threads(1)
    card, _ = read_card(bundled_weights_path("genre-musicnn11"))
    spec = card.front_end
    front_end = MelgramFrontEnd(spec)
    full = [load_checkpoint(bundled_weights_path(name)).model.eval() for name in BACKBONES]
    models = [PrunedMusiCNN(model).eval() for model in full]
    started = time.perf_counter()
    for i, clip in enumerate(missing):
        melgrams = torch.from_numpy(clip_melgrams(clip.path, spec, front_end, None))
        frames, bands = melgrams.shape[1], melgrams.shape[2]
        arrays = {}
        with torch.inference_mode():
            for name, model, backbone in zip(BACKBONES, models, full, strict=True):
                maps = model.maps(melgrams.reshape(1, -1, bands))
                embedding = model.embed_pooled(windowed_pool(maps, frames,
                                                             spec.context_segments))
                arrays[f"{name}_emb"] = embedding.numpy().astype(np.float32)
                arrays[f"{name}_tags"] = backbone.head(embedding).numpy().astype(np.float32)
        target = feature_file(cache, clip)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part.npz")
        np.savez(partial, **arrays)
        partial.replace(target)
        if i % 50 == 0:
            print(f"features: {i + 1}/{len(missing)} clips, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)


def load_features(clips: list[GenreClip], cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The joined 400-d embeddings of every second, and each second's clip index."""
    x, row_clip = [], []
    for i, clip in enumerate(clips):
        with np.load(feature_file(cache, clip)) as part:
            x.append(np.concatenate([part[f"{name}_emb"] for name in BACKBONES], axis=1))
        row_clip.append(np.full(len(x[-1]), i))
    return np.concatenate(x).astype(np.float32), np.concatenate(row_clip)


def print_table(title: str, rows: list[dict]) -> None:
    """A markdown table of ``rows``; a list of per-seed values as mean (min-max)."""
    def cell(value: object) -> str:
        if isinstance(value, list):
            v = np.array(value, dtype=float)
            if np.isnan(v).all():
                return "-"
            whole = bool(np.all(v[~np.isnan(v)] == np.round(v[~np.isnan(v)])))
            digits = 1 if whole or np.nanmax(np.abs(v)) >= 2 else 3
            mean = f"{np.nanmean(v):.{digits}f}"
            if len(v) == 1 or np.nanmin(v) == np.nanmax(v):
                return mean
            return f"{mean} ({np.nanmin(v):.{digits}f}..{np.nanmax(v):.{digits}f})"
        return str(value)

    print(f"\n{title}\n")
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row.values()) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="folder with gtzan/, emotify/ and 4q/ (e.g. ../shared/data)")
    parser.add_argument("--cache", type=Path,
                        default=Path(platformdirs.user_cache_dir("genre-tag")) / "bench_genres",
                        help="where the per-second features are kept")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args()
    torch.set_num_threads(1)
    try:
        clips = read_genre_clips(options.data)
        cache = options.cache / weights_digest()
        compute_features(clips, cache)
    except TaggerError as error:
        print(f"bench_genres: {error}", file=sys.stderr)
        return 1
    data = GenreData(clips, *load_features(clips, cache))
    print(f"{len(clips)} clips, {len(data.row_clip)} seconds; features in {cache}", flush=True)
    results: dict[str, CVResult] = {}
    for name, config in RECIPES.items():
        results[name] = cross_validate(data, name, config, options.seeds, options.folds)
    today, new = results["today"], results["softset-sqrt"]
    tables = {
        "per_source": source_table([today, new]),
        "versus_today": versus(today, new, restricted=False),
        "versus_today_same_11": versus(today, new, restricted=True),
        "per_class": class_table(new, today),
        "held_out": holdout_summary([today, new]),
    }
    titles = {
        "per_source": "Per source (top-1: the top genre is one of the clip's genres)",
        "versus_today": "Clip for clip on today's labelled clips: the new head's top of 17",
        "versus_today_same_11": "The same, the new head's top among today's 11",
        "per_class": "softset-sqrt per genre (today top-1: today's head on the same clips)",
        "held_out": "Held-out genres and AllMusic-outside clips still given a genre",
    }
    for key, rows in tables.items():
        print_table(titles[key], rows)
    record = {
        "command": "python " + " ".join(sys.argv),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "genre_tag": genre_tag_commit(),
        "seeds": options.seeds,
        "folds": options.folds,
        "seconds": {name: r.seconds for name, r in results.items()},
        "tables": tables,
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwritten: {options.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
