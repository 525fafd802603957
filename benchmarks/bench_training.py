"""Seconds per training epoch of uoa-cnn over 3,200 course-sized melgrams (21 x 128).

Run: python benchmarks/bench_training.py [--threads N] [--arch NAME] [--epochs N] [--out FILE]

Builds a course-layout dataset of random melgrams in a temporary folder,
then times (1) loading it, (2) each training epoch, (3) how much of an epoch
goes to assembling batches (indexing + masks) rather than the model. The table
(``training``) goes to benchmarks/results/bench_training.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from results_file import add_out_option, write_results

from tagger.datasets.layouts import load_dataset
from tagger.datasets.splits import TRAIN
from tagger.devices import select_device
from tagger.training.genre import train_classifier
from tagger.training.loop import mask_spectrograms
from tagger.training.options import GenreConfig

GENRES = np.array(["blues", "classical", "hiphop", "rock_metal_hardrock"])


def make_course_melgrams(root: Path, sizes: dict[str, int]) -> None:
    rng = np.random.default_rng(0)
    for folder, n in sizes.items():
        target = root / folder / "melgrams"
        target.mkdir(parents=True)
        np.save(target / "X.npy", rng.uniform(-80, 0, size=(n, 21, 128)).astype(np.float32))
        np.save(target / "labels.npy", GENRES[np.arange(n) % 4])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--arch", default="uoa-cnn")
    parser.add_argument("--epochs", type=int, default=3)
    add_out_option(parser, "bench_training")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        make_course_melgrams(Path(folder), {"train": 3200, "val": 800, "test": 1376})
        started = time.perf_counter()
        dataset = load_dataset(Path(folder), "course", {"features": "melgrams"})
        loading = time.perf_counter() - started
        print(f"loading 5,376 melgrams: {loading:.2f} s")
    config = GenreConfig(architecture=args.arch, epochs=args.epochs, batch_size=64)
    outcome = train_classifier(config, dataset, select_device("cpu"))
    epochs = ", ".join(f"{h.seconds:.2f}" for h in outcome.history)
    print(f"{args.arch}, {torch.get_num_threads()} threads, batch 64: seconds per epoch "
          f"(3,200 train + 800 valid melgrams): {epochs}")
    features = torch.from_numpy(dataset.splits[TRAIN].features)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    order = torch.randperm(len(features), generator=generator)
    for start in range(0, len(order), 64):
        mask_spectrograms(features[order[start : start + 64]], 16, 3, generator)
    assembly = time.perf_counter() - started
    print(f"batch assembly alone (indexing + masks) per epoch: {assembly:.3f} s")
    write_results("bench_training", {"training": [{
        "architecture": args.arch, "threads": torch.get_num_threads(), "batch": 64,
        "loading 5,376 melgrams (s)": round(loading, 2),
        "seconds per epoch, 3,200 train + 800 valid melgrams": [
            round(h.seconds, 2) for h in outcome.history],
        "batch assembly per epoch (s)": round(assembly, 3)}]}, {"epochs": args.epochs},
        args.out)


if __name__ == "__main__":
    main()
