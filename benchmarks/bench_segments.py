"""Genre segments of mixes against the plain per-second argmax and --smooth N.

Run: python benchmarks/bench_segments.py [--weights NAME] [--save FILE | --load FILE]
     [--out FILE]

Mixes are built from the GTZAN validation clips in ../shared/data/gtzan
(clips.csv, ff_split=valid; never training clips): five clips a mix, no two
neighbours of the same genre, in three variants: cut end to end, joined by
3-second equal-power crossfades, and with 3 seconds of silence between them.
The clips are split in two halves (each genre's clips alternately): the
defaults are tuned on the mixes of one half ("tune"), and every method is
reported on the mixes of the other ("report"). Each mix goes through the
model once; the segmenter's settings and the smoothing windows are then tried
on its probabilities.

Measures, per method and variant: boundary precision and recall within +-3 s
(each true boundary matched to at most one found one), and label accuracy:
the share of the audible seconds whose segment (or second) is labelled with
the true genre. A boundary lies where the label changes between audible
seconds (across silence: in the middle of the silence); for the segmenter,
between consecutive audible segments.

The tables go to benchmarks/results/bench_segments.json: ``methods`` (every method and
variant, as printed) and ``summary`` (the plain argmax and the best --smooth over all
mixes, the default segments per variant).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from audio_fixtures import write_audio  # noqa: E402
from results_file import add_out_option, write_results  # noqa: E402

from tagger.audio import decode_to_array  # noqa: E402
from tagger.results import SongResult, smooth_probabilities  # noqa: E402
from tagger.segments import (  # noqa: E402
    DEFAULT_MIN_SEGMENT_SECONDS,
    DEFAULT_SWITCH_PENALTY,
    Segmenter,
)

DATA = ROOT.parent.parent / "shared" / "data" / "gtzan"
CLIPS_PER_MIX = 5
JOIN_SECONDS = 3.0
TOLERANCE_SECONDS = 3.0
VARIANTS = ("cut", "crossfade", "silence")
PENALTIES = (0.0, 2.0, 4.0, 8.0, 16.0, 32.0)
MIN_SEGMENTS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
SMOOTH_WINDOWS = (3, 5, 9, 15, 21, 31)


@dataclass
class Mix:
    name: str
    half: str
    variant: str
    genres: list[str]
    boundaries: list[float]  # true boundaries, seconds
    truth: np.ndarray  # the true genre of every second ("" in silence)
    result: SongResult | None = None


def validation_clips(data: Path) -> dict[str, list[Path]]:
    clips: dict[str, list[Path]] = {}
    with open(data / "clips.csv", newline="") as table:
        for row in csv.DictReader(table):
            if row["ff_split"] == "valid":
                clips.setdefault(row["genre"], []).append(data / row["file"])
    return clips


def halves(clips: dict[str, list[Path]]) -> dict[str, list[tuple[str, Path]]]:
    """Each genre's clips alternately in the "tune" and the "report" half."""
    split: dict[str, list[tuple[str, Path]]] = {"tune": [], "report": []}
    for genre, paths in sorted(clips.items()):
        for i, path in enumerate(sorted(paths)):
            split["tune" if i % 2 else "report"].append((genre, path))
    return split


def mix_orders(clips: list[tuple[str, Path]], rng: np.random.Generator
               ) -> list[list[tuple[str, Path]]]:
    """The clips in mixes of CLIPS_PER_MIX, each next clip of another genre than the one
    before (drawn from the genres with the most clips left, so none is stranded)."""
    left: dict[str, list[Path]] = {}
    for genre, path in clips:
        left.setdefault(genre, []).append(path)
    for paths in left.values():
        rng.shuffle(paths)
    mixes, current, previous = [], [], None
    while any(left.values()):
        choices = [g for g, paths in left.items() if paths and g != previous]
        if not choices:
            break
        most = max(len(left[g]) for g in choices)
        genre = str(rng.choice([g for g in choices if len(left[g]) >= most - 1]))
        current.append((genre, left[genre].pop()))
        previous = genre
        if len(current) == CLIPS_PER_MIX:
            mixes.append(current)
            current = []
    if len(current) >= 2:
        mixes.append(current)
    return mixes


def build_mix(pieces: list[np.ndarray], genres: list[str], variant: str, rate: int
              ) -> tuple[np.ndarray, list[float], np.ndarray]:
    """The mix's samples, its true boundaries and the true genre of every second."""
    join = round(JOIN_SECONDS * rate)
    audio = pieces[0]
    spans = [(0, len(audio))]
    for piece in pieces[1:]:
        if variant == "crossfade":
            fade = np.linspace(0, np.pi / 2, join)
            overlap = audio[-join:] * np.cos(fade) + piece[:join] * np.sin(fade)
            start = len(audio) - join
            audio = np.concatenate([audio[:-join], overlap, piece[join:]])
        elif variant == "silence":
            start = len(audio) + join
            audio = np.concatenate([audio, np.zeros(join, np.float32), piece])
        else:
            start = len(audio)
            audio = np.concatenate([audio, piece])
        spans.append((start, start + len(piece)))
    boundaries = []
    for (_, end_before), (start, _) in itertools.pairwise(spans):
        boundaries.append((min(end_before, start) + max(end_before, start)) / 2 / rate)
    n_seconds = -(-len(audio) // rate)
    truth = np.full(n_seconds, "", dtype=object)
    centres = np.arange(n_seconds) + 0.5
    edges = [0.0, *boundaries, np.inf]
    for genre, low, high in zip(genres, edges[:-1], edges[1:], strict=True):
        truth[(centres >= low) & (centres < high)] = genre
    if variant == "silence":
        for (_, end_before), (start, _) in itertools.pairwise(spans):
            truth[(centres > end_before / rate) & (centres < start / rate)] = ""
    return audio.astype(np.float32), boundaries, truth


def make_mixes(data: Path, tagger: object, folder: Path, seed: int) -> list[Mix]:
    rate = tagger.card.front_end.sample_rate
    rng = np.random.default_rng(seed)
    mixes = []
    for half, clips in halves(validation_clips(data)).items():
        orders = mix_orders(clips, rng)
        decoded = {path: decode_to_array(path, rate) for _, path in clips}
        for number, order in enumerate(orders):
            genres = [genre for genre, _ in order]
            for variant in VARIANTS:
                audio, boundaries, truth = build_mix([decoded[p] for _, p in order], genres,
                                                     variant, rate)
                name = f"{half}-{number:02d}-{variant}"
                path = write_audio(folder / f"{name}.wav", audio, rate)
                mix = Mix(name, half, variant, genres, boundaries, truth)
                mix.result = tagger.tag_file(path)
                mixes.append(mix)
                print(f"  {name}: {' '.join(genres)}", file=sys.stderr, flush=True)
    return mixes


def second_runs(labels: list[str | None], starts: np.ndarray, ends: np.ndarray
                ) -> list[tuple[float, float, str]]:
    """Runs of one label over the audible seconds (None: silent, skipped)."""
    found: list[tuple[float, float, str]] = []
    for label, start, end in zip(labels, starts, ends, strict=True):
        if label is None:
            continue
        if found and found[-1][2] == label:
            found[-1] = (found[-1][0], end, label)
        else:
            found.append((start, end, label))
    return found


def boundaries_of(runs: list[tuple[float, float, str]]) -> list[float]:
    return [(before[1] + after[0]) / 2 for before, after in itertools.pairwise(runs)]


def matched(found: list[float], truth: list[float]) -> int:
    """How many true boundaries have a found one within the tolerance, one to one."""
    pairs = sorted((abs(f - t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)
                   if abs(f - t) <= TOLERANCE_SECONDS)
    used_found, used_truth = set(), set()
    for _, i, j in pairs:
        if i not in used_found and j not in used_truth:
            used_found.add(i)
            used_truth.add(j)
    return len(used_truth)


def labels_per_second(runs: list[tuple[float, float, str]], n_seconds: int) -> np.ndarray:
    labels = np.full(n_seconds, None, dtype=object)
    for start, end, label in runs:
        labels[round(start) : int(np.ceil(end - 1e-9))] = label
    return labels


def method_runs(mix: Mix, method: tuple) -> list[tuple[float, float, str]]:
    result = mix.result
    kind, *settings = method
    if kind == "segments":
        min_segment, penalty = settings
        segmenter = Segmenter(result.segment_seconds, min_segment, penalty)
        segments = segmenter.genre_segments(result.probabilities, result.silent,
                                            result.classes, result.starts, result.ends,
                                            result.uncertain_below)
        return [(s.start, s.end, s.label) for s in segments if s.label is not None]
    probabilities = result.probabilities
    if kind == "smooth":
        probabilities = smooth_probabilities(probabilities, result.silent, settings[0])
    winners = [None if silent else result.classes[i]
               for i, silent in zip(probabilities.argmax(axis=1), result.silent, strict=True)]
    return second_runs(winners, result.starts, result.ends)


@dataclass
class Score:
    found: int = 0
    true: int = 0
    hits: int = 0
    correct: int = 0
    audible: int = 0

    def add(self, mix: Mix, runs: list[tuple[float, float, str]]) -> None:
        found = boundaries_of(runs)
        self.found += len(found)
        self.true += len(mix.boundaries)
        self.hits += matched(found, mix.boundaries)
        labels = labels_per_second(runs, len(mix.truth))
        audible = mix.truth != ""
        self.correct += int((labels[audible] == mix.truth[audible]).sum())
        self.audible += int(audible.sum())

    @property
    def precision(self) -> float:
        return self.hits / max(1, self.found)

    @property
    def recall(self) -> float:
        return self.hits / max(1, self.true)

    @property
    def f1(self) -> float:
        return 2 * self.precision * self.recall / max(1e-9, self.precision + self.recall)

    @property
    def accuracy(self) -> float:
        return self.correct / max(1, self.audible)


def score(mixes: list[Mix], method: tuple) -> Score:
    total = Score()
    for mix in mixes:
        total.add(mix, method_runs(mix, method))
    return total


def tune(mixes: list[Mix]) -> tuple[tuple, tuple]:
    """The segmenter's settings and the smoothing window with the best boundary F1 plus
    label accuracy on ``mixes``."""
    def merit(method: tuple) -> float:
        found = score(mixes, method)
        return found.f1 + found.accuracy

    segments = max((("segments", m, p) for m in MIN_SEGMENTS for p in PENALTIES), key=merit)
    smooth = max((("smooth", n) for n in SMOOTH_WINDOWS), key=merit)
    return segments, smooth


def describe(method: tuple) -> str:
    kind, *settings = method
    if kind == "segments":
        return f"segments (--min-segment {settings[0]:g}s --switch-penalty {settings[1]:g})"
    return f"--smooth {settings[0]}" if kind == "smooth" else "per-second argmax"


def report(mixes: list[Mix], methods: list[tuple]) -> list[dict[str, object]]:
    """Print the table of every method and variant; its rows."""
    rows = []
    for method in methods:
        for variant in (*VARIANTS, "all"):
            chosen = [m for m in mixes if variant in ("all", m.variant)]
            found = score(chosen, method)
            rows.append({"method": describe(method), "mixes": f"{variant} ({len(chosen)})",
                         "boundary precision": round(found.precision, 2),
                         "boundary recall": round(found.recall, 2), "F1": round(found.f1, 2),
                         "label accuracy": round(found.accuracy, 2)})
    print("| " + " | ".join(rows[0]) + " |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(f"{value:.2f}" if isinstance(value, float) else value
                                for value in row.values()) + " |")
    return rows


def summary(rows: list[dict[str, object]], smooth: tuple, defaults: tuple
            ) -> list[dict[str, object]]:
    """The argmax and the tuned --smooth over all mixes, the defaults per variant."""
    labels = {describe(("argmax",)): "per-second argmax",
              describe(smooth): f"`--smooth {smooth[1]}` (best window on the tune mixes)",
              describe(defaults): "segments (defaults)"}
    return [{**row, "method": labels[row["method"]]} for row in rows
            if row["method"] == describe(defaults)
            or (row["method"] in labels and str(row["mixes"]).startswith("all"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="a bundled model by name")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--save", type=Path, help="keep the mixes' results in this pickle")
    parser.add_argument("--load", type=Path, help="read the mixes' results from --save")
    add_out_option(parser, "bench_segments")
    args = parser.parse_args()
    import pickle

    started = time.perf_counter()
    if args.load:
        mixes = pickle.loads(args.load.read_bytes())
    else:
        from tagger.inference import Tagger

        tagger = Tagger.load(args.weights, "cpu")
        with tempfile.TemporaryDirectory() as folder:
            mixes = make_mixes(args.data, tagger, Path(folder), args.seed)
        if args.save:
            args.save.write_bytes(pickle.dumps(mixes))
    model = mixes[0].result.model
    tuning = [m for m in mixes if m.half == "tune"]
    reported = [m for m in mixes if m.half == "report"]
    segments, smooth = tune(tuning)
    print(f"model {model}; {len(tuning)} mixes to tune, {len(reported)} to report "
          f"({CLIPS_PER_MIX} clips each, {len(VARIANTS)} variants); tolerance "
          f"+-{TOLERANCE_SECONDS:g} s")
    print(f"tuned: {describe(segments)}, {describe(smooth)}\n")
    defaults = ("segments", DEFAULT_MIN_SEGMENT_SECONDS, DEFAULT_SWITCH_PENALTY)
    methods = [("argmax",), smooth, segments]
    if defaults != segments:
        methods.append(defaults)
    rows = report(reported, methods)
    print(f"\n{time.perf_counter() - started:.0f} s")
    write_results("bench_segments", {"methods": rows, "summary": summary(rows, smooth, defaults)},
                  {"model": model, "tune_mixes": len(tuning), "report_mixes": len(reported),
                   "tuned": {"segments": describe(segments), "smooth": describe(smooth)},
                   "seed": args.seed}, args.out)


if __name__ == "__main__":
    main()
