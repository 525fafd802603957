"""How closely the exported backends and song-level excerpts follow today's torch model.

Run: python benchmarks/bench_agreement.py [--data ../shared/data] [--out FILE]

On validation seconds of the shared data (GTZAN clips.csv ff_split=valid, and a fixed
sample of Emotify and 4Q clips): per-second top-1 agreement of each backend with torch
and the largest difference of any probability; per-second accuracy and the temperature
refitted on the labelled seconds (GTZAN and Emotify genres), with the expected calibration
error under the card's temperature and the refitted one; then, for --excerpts, how often
the song genre of N excerpts of a few seconds (the seconds that --excerpts analyses) is
the song genre of every second.

The tables go to benchmarks/results/bench_agreement.json: ``backends`` (a row per backend,
torch first) and ``excerpts``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from results_file import add_out_option, write_results

from tagger.inference import Tagger, excerpt_seconds
from tagger.results import softmax
from tagger.training.calibration import expected_calibration_error, fit_temperature

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def validation_clips(data: Path, per_source: int) -> dict[Path, str | None]:
    """The clips and their genre label (None for 4Q, whose labels are moods)."""
    with open(data / "gtzan" / "clips.csv", newline="") as table:
        clips = {data / "gtzan" / row["file"]: row["genre"] for row in csv.DictReader(table)
                 if row["ff_split"] == "valid"}
    for source in ("emotify", "4q"):
        with open(data / source / "labels.csv", newline="") as table:
            rows = sorted(csv.DictReader(table), key=lambda row: row["file"])
        step = max(1, len(rows) // per_source)
        clips |= {data / source / row["file"]: row.get("genre") for row in
                  rows[::step][:per_source]}
    return clips


def figures(name: str, logits: np.ndarray, labels: np.ndarray, temperature: float
            ) -> dict[str, object]:
    """Accuracy and calibration of per-second ``logits`` on the labelled seconds: printed,
    and as columns of the ``backends`` table."""
    known = labels >= 0
    logits, labels = logits[known], labels[known]
    refitted = fit_temperature(logits, labels)
    before = expected_calibration_error(softmax(logits, temperature), labels)
    after = expected_calibration_error(softmax(logits, refitted), labels)
    accuracy = (logits.argmax(1) == labels).mean()
    print(f"{name}: per-second accuracy {accuracy:.4f} on "
          f"{len(labels)} labelled seconds; ECE {before:.4f} at the card's temperature "
          f"{temperature}, refitted temperature {refitted:.4f} (ECE {after:.4f})")
    return {"per-second accuracy": round(float(accuracy), 4), "labelled seconds": len(labels),
            "ECE at the card's temperature": round(float(before), 4),
            "refitted temperature": round(float(refitted), 4),
            "ECE refitted": round(float(after), 4)}


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
    add_out_option(parser, "bench_agreement")
    args = parser.parse_args()

    clips = validation_clips(args.data, args.per_source)
    reference = Tagger.load(device="cpu", backend="torch")
    classes = list(reference.card.classes)
    raw = {clip: reference.outputs(clip, str(clip)) for clip in clips}
    full = {clip: reference.result_from(outputs, str(clip), clip.stem)
            for clip, outputs in raw.items()}
    audible = np.concatenate([~r.silent for r in full.values()])
    expected = np.concatenate([r.probabilities for r in full.values()])[audible]
    labels = np.concatenate([np.full(r.n_seconds, classes.index(clips[clip])
                                     if clips[clip] in classes else -1)
                             for clip, r in full.items()])[audible]
    print(f"{len(clips)} clips, {int(audible.sum())} audible seconds")
    backends = [{"backend": "torch", "top-1 agreement with torch": None,
                 "largest probability difference": None,
                 **figures("torch", np.concatenate([o.values for o in raw.values()])[audible],
                           labels, reference.temperature)}]
    for backend in args.backends:
        tagger = Tagger.load(device="cpu", backend=backend)
        logits = np.concatenate([tagger.outputs(clip, str(clip)).values for clip in clips])
        logits = logits[audible]
        name = tagger.engine.name if tagger.engine else "torch"
        got = softmax(logits, tagger.temperature)
        agreement = (got.argmax(1) == expected.argmax(1)).mean()
        difference = np.abs(got - expected).max()
        print(f"{name}: per-second top-1 agreement with torch {agreement:.4f}, max |prob "
              f"difference| {difference:.4f}")
        backends.append({"backend": name, "top-1 agreement with torch": round(float(agreement), 4),
                         "largest probability difference": round(float(difference), 4),
                         **figures(name, logits, labels, tagger.temperature)})
    excerpts = []
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
        excerpts.append({"excerpts": count, "seconds each": seconds,
                         "same song genre as full analysis": round(float(np.mean(same)), 3),
                         "clips": len(same), "share of seconds": round(float(np.mean(share)), 2)})
    write_results("bench_agreement", {"backends": backends, "excerpts": excerpts},
                  {"clips": len(clips), "audible_seconds": int(audible.sum()),
                   "model": reference.card.name}, args.out)


if __name__ == "__main__":
    main()
