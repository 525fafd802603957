"""Songs per second of ``genre-tag batch --engine ray``, ``--engine local`` and the plain
``genre-tag DIR``: the same real songs, the same model, one after another in one run, so
the ratios hold on a machine shared with other work.

Run: python benchmarks/bench_batch.py [--songs 120] [--weights genre-musicnn17] [--data DIR]
[--out FILE] (needs the ray extra and ../shared/data). The songs are read where they are:
the folder for ``genre-tag DIR`` holds links to them, in a temporary folder. Each command
runs in its own process with empty caches, and its wall time includes start-up (Ray's
too). The table (``engines``) goes to benchmarks/results/bench_batch.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import add_out_option, write_results

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def real_songs(data: Path, count: int) -> list[Path]:
    """``count`` GTZAN clips (30 s each), taken evenly from every genre, by absolute paths
    (a song list's relative entries are relative to the list's folder)."""
    data = data.resolve()
    if not (data / "gtzan").is_dir():
        sys.exit(f"no GTZAN clips in {data / 'gtzan'} (give --data)")
    genres = sorted(path for path in (data / "gtzan").iterdir() if path.is_dir())
    by_genre = [sorted(genre.glob("*.opus")) for genre in genres]
    songs = [clips[i] for i in range(max(map(len, by_genre))) for clips in by_genre
             if i < len(clips)]
    if len(songs) < count:
        sys.exit(f"only {len(songs)} songs in {data / 'gtzan'}")
    return songs[:count]


def timed(command: list[str], cache: Path) -> tuple[float, str]:
    """Wall seconds of ``command`` and its last line on stderr."""
    environment = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    started = time.perf_counter()
    finished = subprocess.run(command, env=environment, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{finished.stderr[-2000:]}")
    lines = finished.stderr.strip().splitlines()
    return seconds, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=120)
    parser.add_argument("--weights", default="genre-musicnn17")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    add_out_option(parser, "bench_batch")
    options = parser.parse_args()
    songs = real_songs(options.data, options.songs)
    genre_tag = [sys.executable, "-m", "tagger"]
    model = ["--weights", options.weights, "--device", "cpu"]
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        folder = work / "songs"
        folder.mkdir()
        for number, song in enumerate(songs):
            (folder / f"{number:04d}-{song.name}").symlink_to(song)
        listing = work / "songs.txt"
        listing.write_text("".join(f"{song}\n" for song in songs))
        runs = {
            "genre-tag batch --engine ray": [*genre_tag, "batch", str(listing), "--out",
                                             str(work / "ray"), "--engine", "ray", *model],
            "genre-tag batch --engine local": [*genre_tag, "batch", str(listing), "--out",
                                               str(work / "local"), *model],
            "genre-tag DIR": [*genre_tag, str(folder), "--quiet", "--no-cache", "--json",
                              str(work / "songs.jsonl"), *model],
        }
        results = {}
        for name, command in runs.items():
            results[name] = timed(command, work / f"cache-{len(results)}")
            print(f"{name}: {results[name][0]:.1f} s", file=sys.stderr)
    plain = results["genre-tag DIR"][0]
    print(f"{len(songs)} GTZAN clips (30 s each), model {options.weights}, "
          f"{os.cpu_count()} CPUs\n")
    rows = [{"command": f"`{name}`", "wall time (s)": round(seconds, 1),
             "songs per second": round(len(songs) / seconds, 2),
             "time against `genre-tag DIR` (x)": round(seconds / plain, 2)}
            for name, (seconds, _) in results.items()]
    print("| command | wall time | songs per second | time vs genre-tag DIR |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['command']} | {row['wall time (s)']:.1f} s | "
              f"{row['songs per second']:.2f} | {row['time against `genre-tag DIR` (x)']:.2f}x |")
    print()
    for name, (_, summary) in results.items():
        print(f"{name}: {summary}")
    write_results("bench_batch", {"engines": rows},
                  {"songs": len(songs), "weights": options.weights,
                   "summaries": {name: summary for name, (_, summary) in results.items()}},
                  options.out)


if __name__ == "__main__":
    main()
