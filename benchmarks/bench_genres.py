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
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from genre_cv import CVResult, GenreData, cross_validate
from genre_tables import class_table, holdout_summary, source_table, versus
from results_file import genre_tag_commit, machine

from tagger.datasets.vocabulary import read_genre_clips
from tagger.errors import TaggerError
from tagger.training.clip_embeddings import (
    compute_embeddings,
    default_embeddings_dir,
    load_embeddings,
    weights_digest,
)
from tagger.training.softset import HeadConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_genres.json"
RECIPES = {"today": HeadConfig(loss="softmax"),
           "softset-sqrt": HeadConfig(loss="softset", balance_power=0.5)}


def report_progress(done: int, missing: int, seconds: float) -> None:
    if done % 50 == 1 or done == missing:
        print(f"embeddings: {done}/{missing} clips, {seconds:.0f} s", flush=True)


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
                        default=default_embeddings_dir(),
                        help="where the per-second embeddings are kept")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
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
