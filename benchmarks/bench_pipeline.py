"""Speed and memory of genre-tag against the course's librosa pipeline.

Run: python benchmarks/bench_pipeline.py   (needs the test extra: librosa)

1. On a 3-minute MP3: decode + melgrams + model (genre-tag) against
   librosa.load at 8 kHz then melspectrogram + power_to_db per second (the
   course helper), same file, same run, best of 3, interpreter start-up and
   model loading excluded.
2. The whole `genre-tag song.mp3 --no-cache` command, wall time, best of 3.
3. Time and peak RSS of `genre-tag long.mp3 --quiet --no-cache` on a 60-minute MP3.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-minutes", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--weights", type=Path, help="a checkpoint (default: the bundled model)")
    args = parser.parse_args()
    chosen = ["--weights", str(args.weights)] if args.weights else []

    import torch

    from tagger.inference import Tagger

    with tempfile.TemporaryDirectory() as folder:
        song = write_mp3(Path(folder) / "song.mp3", 180)
        tagger = Tagger.load(args.weights, device="cpu")
        print(f"model: {tagger.card.name} ({tagger.card.architecture}, input "
              f"{tagger.card.input_shape})")
        tagger.tag_file(song)  # warm-up
        ours = best_of(args.runs, lambda: tagger.tag_file(song))
        course_pipeline(song)  # warm-up (numba compilation)
        theirs = best_of(args.runs, lambda: course_pipeline(song))
        print(f"torch threads: {torch.get_num_threads()}")
        print(f"3-min MP3, genre-tag decode+melgrams+model: {ours:.3f} s")
        print(f"3-min MP3, course librosa pipeline (features only): {theirs:.3f} s")
        print(f"speed-up: {theirs / ours:.1f}x")

        command = [sys.executable, "-m", "tagger", str(song), "--device", "cpu", "--no-cache",
                   *chosen]
        whole = best_of(args.runs, lambda: subprocess.run(command, check=True,
                                                          capture_output=True))
        print(f"whole command `genre-tag song.mp3` (3 min): {whole:.2f} s")

        long = write_mp3(Path(folder) / "long.mp3", args.long_minutes * 60)
        started = time.perf_counter()
        peak = run_measuring_rss(sys.executable, "-m", "tagger", str(long), "--quiet",
                                 "--device", "cpu", "--no-cache", *chosen)
        elapsed = time.perf_counter() - started
        print(f"{args.long_minutes}-min MP3: {elapsed:.1f} s, peak RSS {peak:.0f} MB")
        print(f"for scale, `python -c 'import torch'` alone: peak RSS "
              f"{run_measuring_rss(sys.executable, '-c', 'import torch'):.0f} MB "
              f"(torch {torch.__version__})")


if __name__ == "__main__":
    main()
