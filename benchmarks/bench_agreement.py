"""How closely the exported backends and song-level excerpts follow today's torch model.

Run: python benchmarks/bench_agreement.py [--data ../shared/data]

On validation seconds of the shared data (GTZAN clips.csv ff_split=valid, and a fixed
sample of Emotify and 4Q clips): per-second top-1 agreement of each backend with torch
and the largest difference of any probability; then, for --excerpts, how often the song
genre of N excerpts of a few seconds (the seconds that --excerpts analyses) is the song
genre of every second.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from tagger.inference import Tagger, excerpt_seconds

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def validation_clips(data: Path, per_source: int) -> list[Path]:
    with open(data / "gtzan" / "clips.csv", newline="") as table:
        clips = [data / "gtzan" / row["file"] for row in csv.DictReader(table)
                 if row["ff_split"] == "valid"]
    for source in ("emotify", "4q"):
        with open(data / source / "labels.csv", newline="") as table:
            files = sorted(row["file"] for row in csv.DictReader(table))
        step = max(1, len(files) // per_source)
        clips += [data / source / name for name in files[::step][:per_source]]
    return clips


def song_genre(probabilities: np.ndarray, counted: np.ndarray) -> int:
    """The genre that wins most counted seconds (ties: higher mean probability)."""
    wins = np.bincount(probabilities[counted].argmax(1), minlength=probabilities.shape[1])
    means = probabilities[counted].mean(0)
    return int(np.lexsort((-means, -wins))[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--per-source", type=int, default=30)
    parser.add_argument("--backends", nargs="+", default=["openvino", "onnx"])
    args = parser.parse_args()

    clips = validation_clips(args.data, args.per_source)
    reference = Tagger.load(device="cpu", backend="torch")
    full = {clip: reference.tag_file(clip) for clip in clips}
    audible = np.concatenate([~r.silent for r in full.values()])
    expected = np.concatenate([r.probabilities for r in full.values()])[audible]
    print(f"{len(clips)} clips, {int(audible.sum())} audible seconds")
    for backend in args.backends:
        tagger = Tagger.load(device="cpu", backend=backend)
        got = np.concatenate([tagger.tag_file(clip).probabilities for clip in clips])[audible]
        agreement = (got.argmax(1) == expected.argmax(1)).mean()
        print(f"{tagger.engine.name if tagger.engine else 'torch'}: per-second top-1 "
              f"agreement {agreement:.4f}, max |prob difference| "
              f"{np.abs(got - expected).max():.4f}")
    for count, seconds in ((1, 5), (3, 3), (3, 5), (5, 3), (5, 5)):
        same = []
        share = []
        for result in full.values():
            chosen = np.zeros(result.n_seconds, dtype=bool)
            chosen[excerpt_seconds(result.n_seconds, count, seconds)] = True
            counted = chosen & ~result.silent
            if not counted.any() or result.silent.all():
                continue
            same.append(song_genre(result.probabilities, counted)
                        == song_genre(result.probabilities, ~result.silent))
            share.append(chosen.mean())
        print(f"--excerpts {count} ({seconds} s each): song genre as full analysis's for "
              f"{np.mean(same):.3f} of {len(same)} clips ({np.mean(share):.0%} of seconds)")


if __name__ == "__main__":
    main()
