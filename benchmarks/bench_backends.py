"""Today's torch path against the new default backend, side by side, with ratios.

Run: python benchmarks/bench_backends.py   (needs the test extra: librosa; the default
backend is what `genre-tag` picks here: OpenVINO or ONNX Runtime when installed)

Every figure is the median of --runs repeats, the variants interleaved in each repeat, so
that the load of a shared machine falls on all of them alike; compare the ratios.

1. Model time for a 3-minute song: the model over its melgrams, nothing else.
2. The whole `genre-tag song.mp3 --json out.json` on a 3-minute MP3 (192 kb/s, 44.1 kHz
   stereo): interpreter, imports, model loading, decoding, melgrams, model, output.
3. A folder of clips (--folder-minutes of audio), `genre-tag FOLDER --quiet`, in x real time.
4. The course's librosa pipeline as a script (interpreter, imports, load at 8 kHz,
   per-second melgrams; no model) on the same song and folder: the baseline of issue 17.

The table goes to benchmarks/results/bench_backends.json (table ``backends``; --out:
elsewhere).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from bench_pipeline import run_measuring_rss, write_mp3
from results_file import add_out_option, write_results

LIBROSA_SCRIPT = """
import sys
from pathlib import Path
import librosa, numpy as np
paths = [p for a in sys.argv[1:] for p in (sorted(Path(a).rglob('*.mp3')) if Path(a).is_dir()
                                           else [Path(a)])]
for path in paths:
    signal, _ = librosa.load(str(path), sr=8000)
    n = -(-len(signal) // 8000)
    signal = np.pad(signal, (0, n * 8000 - len(signal)))
    melgrams = [librosa.power_to_db(librosa.feature.melspectrogram(
        y=s, sr=8000, n_fft=400, hop_length=400, n_mels=128, fmax=4000), ref=np.max).T
        for s in signal.reshape(n, 8000)]
"""


def interleaved(variants: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """The median time of each variant over ``runs`` rounds, one of each per round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, action in variants.items():
            started = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def model_runs(tagger, song: Path) -> list[tuple[np.ndarray, int, int]]:
    """The melgram runs ``tagger`` feeds its model for ``song``."""
    from tagger.features import file_segments, stream_runs

    segments = list(file_segments(song, tagger.card.front_end))
    melgrams = tagger.front_end(np.stack([s.samples for s in segments]))
    batches = (melgrams[first : first + tagger.batch_size]
               for first in range(0, len(melgrams), tagger.batch_size))
    return list(stream_runs(batches, tagger.margin))


def command(*args: str) -> Callable[[], object]:
    return lambda: subprocess.run([sys.executable, *args], check=True, capture_output=True)


def row(label: str, today: float, new: float, unit: str = "s",
        librosa: float | None = None) -> dict[str, object]:
    """Print a line of the table and return its row; the ratio is how many times faster the
    new default is."""
    faster = new / today if unit == "x" else today / new  # for MB: how many times smaller
    print(f"{label:<44} {today:>9.2f} {unit:<3} {new:>9.2f} {unit:<3} {faster:>6.2f}x")
    def shown(value: float) -> float | int:
        return round(value) if unit == "MB" else round(value, 2)

    return {"measure": label.strip() + (" (s)" if unit == "s" else ""),
            "torch (`--backend torch`)": shown(today), "default backend": shown(new),
            "the course's librosa script (no model)": (None if librosa is None
                                                       else shown(librosa)),
            "default better by (x)": round(faster, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--folder-minutes", type=int, default=24)
    add_out_option(parser, "bench_backends")
    args = parser.parse_args()

    from tagger.inference import Tagger

    today = Tagger.load(device="cpu", backend="torch")
    new = Tagger.load(device="cpu")
    print(f"model {today.card.name}; today: torch; new default: {new.backend} "
          f"({new.engine.name if new.engine else 'torch'}; its command imports no torch); "
          f"{torch.get_num_threads()} threads; "
          f"median of {args.runs}, interleaved")
    print(f"{'':<44} {'today':>13} {'new':>13} {'faster':>7}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        song = write_mp3(folder / "song.mp3", 180, bit_rate=192_000)
        runs = model_runs(today, song)
        for tagger in (today, new):  # warm-up (and the graph's first build)
            tagger.tag_file(song)
        model = interleaved({
            name: lambda t=tagger: [t.run_outputs(*run) for run in runs]
            for name, tagger in (("today", today), ("new", new))}, args.runs)
        rows = [row("model time, 3-min song", model["today"], model["new"])]

        clips = folder / "clips"
        clips.mkdir()
        for i in range(args.folder_minutes * 2):
            write_mp3(clips / f"clip{i:02}.mp3", 30, bit_rate=192_000)
        script = folder / "course_pipeline.py"
        script.write_text(LIBROSA_SCRIPT)
        tag = ("-m", "tagger", "--device", "cpu", "--no-cache")
        whole = interleaved({
            "today": command(*tag, str(song), "--backend", "torch", "--json",
                             str(folder / "a.json")),
            "new": command(*tag, str(song), "--json", str(folder / "b.json")),
            "librosa": command(str(script), str(song)),
        }, args.runs)
        rows.append(row("whole `genre-tag song.mp3 --json out.json`", whole["today"],
                        whole["new"], librosa=whole["librosa"]))
        memory = {
            "today": run_measuring_rss(sys.executable, *tag, str(song), "--backend", "torch",
                                       "--json", str(folder / "a.json")),
            "new": run_measuring_rss(sys.executable, *tag, str(song), "--json",
                                     str(folder / "b.json")),
            "librosa": run_measuring_rss(sys.executable, str(script), str(song)),
        }
        rows.append(row("  its peak memory (MB)", memory["today"], memory["new"], "MB",
                        memory["librosa"]))
        seconds = args.folder_minutes * 60
        runs_folder = interleaved({
            "today": command(*tag, str(clips), "--quiet", "--backend", "torch"),
            "new": command(*tag, str(clips), "--quiet"),
            "librosa": command(str(script), str(clips)),
        }, args.runs)
        rows.append(row(f"folder of {args.folder_minutes} min, x real time",
                        seconds / runs_folder["today"], seconds / runs_folder["new"], "x",
                        seconds / runs_folder["librosa"]))
        print(f"{'librosa script (no model): song':<44} {whole['librosa']:>9.2f} s, "
              f"{memory['librosa']:.0f} MB; "
              f"genre-tag/librosa: today {whole['today'] / whole['librosa']:.2f}x, "
              f"new {whole['new'] / whole['librosa']:.2f}x")
        librosa_speed = seconds / runs_folder["librosa"]
        print(f"{'librosa script (no model): folder':<44} {librosa_speed:>9.1f} x real time; "
              f"genre-tag/librosa: today "
              f"{runs_folder['today'] / runs_folder['librosa']:.2f}x, "
              f"new {runs_folder['new'] / runs_folder['librosa']:.2f}x")

    write_results("bench_backends", {"backends": rows},
                  {"runs": args.runs, "folder_minutes": args.folder_minutes,
                   "model": today.card.name, "default_backend": new.backend,
                   "default_engine": new.engine.name if new.engine else "torch",
                   "threads": torch.get_num_threads()}, args.out)


if __name__ == "__main__":
    main()
