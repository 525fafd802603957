"""int8 post-training quantization of the bundled genre model's OpenVINO graph, measured and
not taken: per-second top-1 agreement with float32 and model time, beside bfloat16.

Run: pip install nncf && python benchmarks/bench_int8.py [--data ../shared/data] [--out FILE]

Calibration: every run of every 8th GTZAN training clip (static, per-channel weights,
NNCF's performance and mixed presets); agreement: the validation seconds of
bench_agreement.py; model time: a 3-minute song's runs, median of 3. The table
(``variants``) goes to benchmarks/results/bench_int8.json.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import nncf
import numpy as np
import openvino as ov
from bench_agreement import DATA, validation_clips
from bench_pipeline import write_mp3
from results_file import add_out_option, write_results

from tagger.backends import shipped_graphs_folder
from tagger.features import file_segments, stream_runs
from tagger.inference import Tagger

Runs = list[tuple[np.ndarray, int, int]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    add_out_option(parser, "bench_int8")
    args = parser.parse_args()
    tagger = Tagger.load(device="cpu")
    graph = next(shipped_graphs_folder().glob(f"{tagger.checksum}-*.xml"))
    core = ov.Core()

    def runs_of(path: Path) -> tuple[Runs, np.ndarray]:
        segments = list(file_segments(path, tagger.card.front_end))
        melgrams = tagger.front_end(np.stack([s.samples for s in segments]))
        batches = (melgrams[i : i + 64] for i in range(0, len(melgrams), 64))
        return list(stream_runs(batches, tagger.margin)), np.array([s.silent for s in segments])

    def outputs(compiled: ov.CompiledModel, runs: Runs) -> np.ndarray:
        request = compiled.create_infer_request()
        return np.concatenate([request.infer({0: run})[0][start : start + count]
                               for run, start, count in runs])

    def compiled_of(model: ov.Model, precision: str) -> ov.CompiledModel:
        return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                 "INFERENCE_NUM_THREADS": 2,
                                                 "ENABLE_CPU_PINNING": False})

    valid = [runs_of(clip) for clip in validation_clips(args.data, 30)]
    with open(args.data / "gtzan" / "clips.csv", newline="") as table:
        train = [args.data / "gtzan" / row["file"] for row in csv.DictReader(table)
                 if row["ff_split"] == "train"]
    calibration = [run for clip in train[::8] for run, _, _ in runs_of(clip)[0]]
    with tempfile.TemporaryDirectory() as folder:
        song_runs, _ = runs_of(write_mp3(Path(folder) / "song.mp3", 180, bit_rate=192_000))
    audible = np.concatenate([~silent for _, silent in valid])
    reference = core.read_model(graph)
    float32 = compiled_of(reference, "f32")
    expected = np.concatenate([outputs(float32, runs) for runs, _ in valid])[audible].argmax(1)
    print(f"{len(valid)} validation clips, {audible.sum()} audible seconds; "
          f"{len(calibration)} calibration runs")

    variants = []

    def report(name: str, compiled: ov.CompiledModel) -> None:
        got = np.concatenate([outputs(compiled, runs) for runs, _ in valid])[audible]
        request = compiled.create_infer_request()
        times = []
        for _ in range(4):
            started = time.perf_counter()
            for run, _, _ in song_runs:
                request.infer({0: run})
            times.append(time.perf_counter() - started)
        agreement = float((got.argmax(1) == expected).mean())
        seconds = statistics.median(times[1:])
        print(f"{name:<34} agreement with float32 {agreement:.4f}, "
              f"3-min song model time {seconds:.3f} s")
        variants.append({"variant": name, "per-second top-1 agreement with float32":
                         round(agreement, 4), "model time, 3-min song (s)": round(seconds, 3)})

    report("float32", float32)
    report("bfloat16 (the default)", compiled_of(reference, "bf16"))
    convolutions = [op for op in reference.get_ordered_ops()
                    if op.get_type_name() == "Convolution"]
    timbral = {op.get_friendly_name() for op in convolutions
               if op.input(1).get_partial_shape()[0].get_length() == 204}
    others = [op.get_friendly_name() for op in reference.get_ordered_ops()
              if op.get_type_name() in ("Convolution", "MatMul")
              and op.get_friendly_name() not in timbral]
    dataset = nncf.Dataset(calibration)
    for scope, ignored in (("all layers", None), ("timbral convs only",
                                                  nncf.IgnoredScope(names=others))):
        for preset in (nncf.QuantizationPreset.PERFORMANCE, nncf.QuantizationPreset.MIXED):
            quantized = nncf.quantize(core.read_model(graph), dataset, preset=preset,
                                      subset_size=len(calibration),
                                      ignored_scope=ignored or nncf.IgnoredScope())
            report(f"int8 {scope}, {preset.value}", compiled_of(quantized, "bf16"))

    write_results("bench_int8", {"variants": variants},
                  {"validation_clips": len(valid), "audible_seconds": int(audible.sum()),
                   "calibration_runs": len(calibration), "nncf": nncf.__version__,
                   "openvino": ov.__version__}, args.out)


if __name__ == "__main__":
    main()
