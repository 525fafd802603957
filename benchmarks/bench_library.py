"""Songs per minute of `genre-tag` over a library: 1 job, N jobs, and a second (cached) run.

Run: python benchmarks/bench_library.py [--data ../shared/data] [--songs 100] [--jobs 1 2]
     [--write-emotion] [--out FILE]

The songs are real 30-second GTZAN clips of ../shared/data, the same number from each
genre, read in place. Every configuration is the whole command (`genre-tag FILES --quiet
--json /dev/null`: start-up, model loading and worker start-up included) with an empty
results cache of its own; the warm run repeats the last one on its now full cache. With
--write-emotion the command is `genre-tag FILES --write-tags --write-emotion --dry-run`
on writable copies of the clips: genres and emotion for every song, nothing written.

First, in this process, the share of a song's time that decoding and melgrams take (the
rest is the model): what work a pool of decoding workers could take off the model's
process.

The tables (``runs``, ``one_process``) go to benchmarks/results/bench_library.json, with
--write-emotion to bench_library_emotion.json (--out: elsewhere).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import add_out_option, write_results

ROOT = Path(__file__).resolve().parents[1]


def library(data: Path, songs: int) -> list[Path]:
    """``songs`` GTZAN clips, taken in turn from each genre folder."""
    genres = sorted(p for p in (data / "gtzan").iterdir() if p.is_dir())
    if not genres:
        sys.exit(f"no GTZAN genre folders in {data / 'gtzan'}")
    clips = [sorted(folder.glob("*.*")) for folder in genres]
    chosen = [clip for group in zip(*clips, strict=False) for clip in group][:songs]
    if len(chosen) < songs:
        sys.exit(f"only {len(chosen)} clips in {data / 'gtzan'}")
    return chosen


def decoding_share(files: list[Path], weights: str | None) -> tuple[float, float]:
    """Seconds per song of decoding + melgrams, and of the whole analysis, in one process."""
    import numpy as np

    from tagger.features import file_segments
    from tagger.inference import Tagger

    model = Tagger.load(Path(weights) if weights else None, "cpu")
    spec = model.card.front_end
    model.outputs(files[0], str(files[0]))  # warm-up
    started = time.perf_counter()
    for path in files:
        model.front_end(np.stack([s.samples for s in file_segments(path, spec)]))
    decoding = time.perf_counter() - started
    started = time.perf_counter()
    for path in files:
        model.outputs(path, str(path))
    return decoding / len(files), (time.perf_counter() - started) / len(files)


def timed_run(files: list[Path], jobs: int, cache_home: Path, weights: str | None,
              write_emotion: bool) -> float:
    """Wall time of one whole `genre-tag` run."""
    command = [sys.executable, "-m", "tagger", *map(str, files), "--jobs", str(jobs),
               "--device", "cpu"]
    command += (["--write-tags", "--write-emotion", "--dry-run"] if write_emotion
                else ["--quiet", "--json", os.devnull])
    if weights:
        command += ["--weights", weights]
    environment = {**os.environ, "XDG_CACHE_HOME": str(cache_home),
                   "XDG_DATA_HOME": str(cache_home), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run(command, env=environment, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run_row(run: str, seconds: float, songs: int) -> dict[str, object]:
    return {"run": run, "seconds": round(seconds, 1),
            "songs per minute": round(songs / seconds * 60),
            "x real time": round(30 * songs / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--songs", type=int, default=100)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--weights", help="a checkpoint or bundled model (default: bundled)")
    parser.add_argument("--write-emotion", action="store_true",
                        help="time a dry run of --write-tags --write-emotion instead")
    add_out_option(parser, "bench_library")
    args = parser.parse_args()
    files = library(args.data, args.songs)
    seconds = 30 * len(files)
    print(f"{len(files)} songs ({seconds / 60:.0f} min of audio), {os.cpu_count()} CPUs, "
          f"weights {args.weights or 'default'}")
    decoding, whole = decoding_share(files[:5], args.weights)
    print(f"one process: decode + melgrams {decoding:.3f} s of {whole:.3f} s per song "
          f"({decoding / whole:.0%})")
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        if args.write_emotion:
            copies = Path(scratch) / "library"
            copies.mkdir()
            files = [shutil.copyfile(path, copies / path.name) for path in files]
        for jobs in args.jobs:
            cache_home = Path(scratch) / f"jobs{jobs}"
            took = timed_run(files, jobs, cache_home, args.weights, args.write_emotion)
            print(f"--jobs {jobs}, empty cache: {took:6.1f} s, "
                  f"{len(files) / took * 60:6.1f} songs/min")
            runs.append(run_row(f"`--jobs {jobs}`, empty cache", took, len(files)))
        took = timed_run(files, args.jobs[-1], cache_home, args.weights, args.write_emotion)
        print(f"--jobs {args.jobs[-1]}, warm cache:  {took:6.1f} s, "
              f"{len(files) / took * 60:6.1f} songs/min")
        runs.append(run_row(f"`--jobs {args.jobs[-1]}`, warm cache", took, len(files)))
    one_process = [{"decode + melgrams (s per song)": round(decoding, 3),
                    "whole analysis (s per song)": round(whole, 3),
                    "decode + melgrams share": round(decoding / whole, 2)}]
    write_results("bench_library_emotion" if args.write_emotion else "bench_library",
                  {"runs": runs, "one_process": one_process},
                  {"songs": len(files), "weights": args.weights or "default",
                   "write_emotion": args.write_emotion}, args.out)


if __name__ == "__main__":
    main()
