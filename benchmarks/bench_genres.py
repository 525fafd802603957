"""Today's genre recipe against the recommended 17-genre default (issue 23), side by side.

Run: python benchmarks/bench_genres.py --data ../shared/data [--cache DIR] [--seeds 0 1 2]

Step 1 computes each clip's per-second embeddings once
(``tagger.training.clip_embeddings``, the same path and cache as ``genre-tag retrain --format
vocabulary``; ``--cache``, default the user cache): about 20 minutes on two loaded cores,
then seconds. Step 2 is a group-aware cross-validation (``genre_cv``) of both recipes on the
same folds:

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
import sys
from pathlib import Path

import numpy as np
import torch
from genre_cv import CVResult, GenreData, cross_validate
from genre_tables import class_table, holdout_summary, source_table, versus
from results_file import add_out_option, write_results

from tagger.datasets.vocabulary import read_genre_clips
from tagger.errors import TaggerError
from tagger.training.clip_embeddings import (
    compute_embeddings,
    default_embeddings_dir,
    load_embeddings,
    weights_digest,
)
from tagger.training.softset import HeadConfig

# name: the head's recipe, the share of known songs its familiarity level leaves out and
# its thresholds' least precision (genre-musicnn17's: retrain --unfamiliar-share 0.1
# --min-precision 0.33)
RECIPES = {"today": (HeadConfig(loss="softmax"), 0.0, 0.0),
           "softset-sqrt": (HeadConfig(loss="softset", balance_power=0.5), 0.0, 0.0),
           "genre-musicnn17": (HeadConfig(loss="softset", balance_power=0.5), 0.1, 0.33)}
NEW_DEFAULT = "genre-musicnn17"


def report_progress(done: int, missing: int, seconds: float) -> None:
    if done % 50 == 1 or done == missing:
        print(f"embeddings: {done}/{missing} clips, {seconds:.0f} s", flush=True)


def cell(value: object) -> object:
    """A list of per-seed values as "mean (min..max)"; other values as they are."""
    if not isinstance(value, list):
        return value
    v = np.array(value, dtype=float)
    if np.isnan(v).all():
        return "-"
    known = v[~np.isnan(v)]
    digits = 1 if bool(np.all(known == np.round(known))) or np.nanmax(np.abs(v)) >= 2 else 3
    mean = f"{np.nanmean(v):.{digits}f}"
    if len(v) == 1 or np.nanmin(v) == np.nanmax(v):
        return mean
    return f"{mean} ({np.nanmin(v):.{digits}f}..{np.nanmax(v):.{digits}f})"


def shown(rows: list[dict]) -> list[dict]:
    return [{key: cell(value) for key, value in row.items()} for row in rows]


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="folder with gtzan/, emotify/ and 4q/ (e.g. ../shared/data)")
    parser.add_argument("--cache", type=Path,
                        default=default_embeddings_dir(),
                        help="where the per-second embeddings are kept")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    add_out_option(parser, "bench_genres")
    options = parser.parse_args()
    torch.set_num_threads(1)
    try:
        clips = read_genre_clips(options.data)
        compute_embeddings(clips, options.cache, report_progress)
    except TaggerError as error:
        print(f"bench_genres: {error}", file=sys.stderr)
        return 1
    data = GenreData(clips, *load_embeddings(clips, options.cache))
    print(f"{len(clips)} clips, {len(data.row_clip)} seconds; embeddings in "
          f"{options.cache / weights_digest()}", flush=True)
    results: dict[str, CVResult] = {}
    for name, (config, unfamiliar_share, min_precision) in RECIPES.items():
        results[name] = cross_validate(data, name, config, options.seeds, options.folds,
                                       unfamiliar_share, min_precision)
    today, new = results["today"], results[NEW_DEFAULT]
    tables = {
        "per_source": source_table(list(results.values())),
        "versus_today": versus(today, new, restricted=False),
        "versus_today_same_11": versus(today, new, restricted=True),
        "per_class": class_table(new, today),
        "held_out": holdout_summary(list(results.values())),
    }
    titles = {
        "per_source": "Per source (top-1: the top genre is one of the clip's genres; first "
                      "genre: the song's best genre is one of them, no genre counting wrong)",
        "versus_today": "Clip for clip on today's labelled clips: the new head's top of 17",
        "versus_today_same_11": "The same, the new head's top among today's 11",
        "per_class": f"{NEW_DEFAULT} per genre (today top-1: today's head on the same clips)",
        "held_out": "Held-out genres and AllMusic-outside clips still given a genre",
    }
    for key, rows in tables.items():
        print_table(titles[key], shown(rows))
    write_results("bench_genres", {key: shown(rows) for key, rows in tables.items()},
                  {"seeds": options.seeds, "folds": options.folds, "titles": titles,
                   "recipe_seconds": {name: r.seconds for name, r in results.items()},
                   "per_seed": tables}, options.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
