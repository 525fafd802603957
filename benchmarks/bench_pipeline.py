"""Speed and memory of genre-tag against the course's librosa pipeline.

Run: python benchmarks/bench_pipeline.py [--weights NAME ...] [--long-minutes N] [--runs N]
     [--out FILE]   (needs the test extra: librosa)

For each model of --weights (default: the bundled one):
1. On a 3-minute MP3: decode + melgrams + model (genre-tag) against
   librosa.load at 8 kHz then melspectrogram + power_to_db per second (the
   course helper), same file, same run, best of 3, interpreter start-up and
   model loading excluded.
2. The whole `genre-tag song.mp3 --no-cache` command, wall time, best of 3.
3. Time and peak RSS of `genre-tag long.mp3 --quiet --no-cache` on a 60-minute MP3.

The table goes to benchmarks/results/bench_pipeline.json (table ``pipeline``: a row per
model, one for the librosa pipeline, one for `import torch` alone).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from audio_fixtures import synth_song
from results_file import add_out_option, write_results


def write_mp3(path: Path, seconds: int, rate: int = 44100, bit_rate: int = 128_000) -> Path:
    """Encode a synthetic stereo song minute by minute, so memory stays small."""
    with av.open(str(path), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.bit_rate = bit_rate
        for start in range(0, seconds, 60):
            chunk = synth_song(min(60, seconds - start), rate, seed=start)
            data = (np.stack([chunk, chunk]) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(data, format="s16p", layout="stereo")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# Runs a command and prints its status and peak RSS (KB). A child of this benchmark would
# report at least this process's own RSS (Linux keeps the peak across fork and exec), so
# the command is started from this small launcher instead.
RSS_LAUNCHER = ("import os, subprocess, sys; child = subprocess.Popen(sys.argv[1:], "
                "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
                "_, status, usage = os.wait4(child.pid, 0); print(status, usage.ru_maxrss)")


def run_measuring_rss(*command: str) -> float:
    """Run ``command``; its peak resident memory in MB (it must succeed)."""
    printed = subprocess.run([sys.executable, "-c", RSS_LAUNCHER, *command], check=True,
                             capture_output=True, text=True).stdout.split()
    assert printed[0] == "0", f"{command} failed ({printed[0]})"
    return int(printed[1]) / 1024


def best_of(runs: int, action) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def course_pipeline(path: Path) -> np.ndarray:
    import librosa

    signal, _ = librosa.load(str(path), sr=8000)
    n = -(-len(signal) // 8000)
    signal = np.pad(signal, (0, n * 8000 - len(signal)))
    return np.stack([
        librosa.power_to_db(
            librosa.feature.melspectrogram(y=s, sr=8000, n_fft=400, hop_length=400, n_mels=128,
                                           fmax=4000), ref=np.max).T
        for s in signal.reshape(n, 8000)
    ])


def measure_model(weights: Path | None, song: Path, long: Path, long_minutes: int,
                  runs: int) -> dict[str, object]:
    """The model's row of the table, printing as it goes."""
    from tagger.inference import Tagger

    chosen = ["--weights", str(weights)] if weights else []
    tagger = Tagger.load(weights, device="cpu")
    print(f"model: {tagger.card.name} ({tagger.card.architecture}, input "
          f"{tagger.card.input_shape}; backend {tagger.backend})")
    tagger.tag_file(song)  # warm-up
    ours = best_of(runs, lambda: tagger.tag_file(song))
    print(f"3-min MP3, genre-tag decode+melgrams+model: {ours:.3f} s")
    command = [sys.executable, "-m", "tagger", str(song), "--device", "cpu", "--no-cache",
               *chosen]
    whole = best_of(runs, lambda: subprocess.run(command, check=True, capture_output=True))
    print(f"whole command `genre-tag song.mp3` (3 min): {whole:.2f} s")
    started = time.perf_counter()
    peak = run_measuring_rss(sys.executable, "-m", "tagger", str(long), "--quiet",
                             "--device", "cpu", "--no-cache", *chosen)
    elapsed = time.perf_counter() - started
    print(f"{long_minutes}-min MP3: {elapsed:.1f} s, peak RSS {peak:.0f} MB")
    return {"pipeline": f"{tagger.card.name} ({tagger.backend})",
            "3-min MP3: decode + melgrams + model (s)": round(ours, 2),
            "whole `genre-tag song.mp3`, 3 min (s)": round(whole, 2),
            f"`genre-tag` on a {long_minutes}-min MP3 (s)": round(elapsed, 1),
            "peak RSS of that run (MB)": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-minutes", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--weights", type=Path, nargs="+", default=[None],
                        help="checkpoints or bundled models (default: the bundled model)")
    add_out_option(parser, "bench_pipeline")
    args = parser.parse_args()

    import torch

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        song = write_mp3(Path(folder) / "song.mp3", 180)
        long = write_mp3(Path(folder) / "long.mp3", args.long_minutes * 60)
        print(f"torch threads: {torch.get_num_threads()}")
        for weights in args.weights:
            rows.append(measure_model(weights, song, long, args.long_minutes, args.runs))
        course_pipeline(song)  # warm-up (numba compilation)
        theirs = best_of(args.runs, lambda: course_pipeline(song))
        print(f"3-min MP3, course librosa pipeline (features only): {theirs:.3f} s")
        for row in rows:
            print(f"speed-up of {row['pipeline']}: "
                  f"{theirs / row['3-min MP3: decode + melgrams + model (s)']:.1f}x")
    torch_alone = run_measuring_rss(sys.executable, "-c", "import torch")
    print(f"for scale, `python -c 'import torch'` alone: peak RSS {torch_alone:.0f} MB "
          f"(torch {torch.__version__})")
    rows.append({"pipeline": "the course's librosa pipeline (features only, no model)",
                 "3-min MP3: decode + melgrams + model (s)": round(theirs, 2)})
    rows.append({"pipeline": f"`python -c 'import torch'` alone (torch {torch.__version__})",
                 "peak RSS of that run (MB)": round(torch_alone)})
    write_results("bench_pipeline", {"pipeline": rows},
                  {"runs": args.runs, "long_minutes": args.long_minutes,
                   "torch_threads": torch.get_num_threads()}, args.out)


if __name__ == "__main__":
    main()
