"""The ``genre-tag retrain`` workflow: data folder in, run folder with checkpoint out."""

from __future__ import annotations

import platform
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import Progress

from tagger.datasets import TRAIN, VALID, Clip, default_cache_dir, discover_clips, load_segment_sets
from tagger.devices import select_device
from tagger.features import FrontEndSpec
from tagger.training import EpochRecord, TrainConfig, train_classifier, write_run


def run_retrain(
    data_dir: Path, out_dir: Path, name: str, epochs: int, batch_size: int, lr: float,
    weight_decay: float, seed: int, valid_share: float, threads: int, cache_dir: Path | None,
    device: str, command: str,
) -> int:
    console = Console(stderr=True)
    if threads:
        torch.set_num_threads(threads)
    chosen = select_device(device)
    spec = FrontEndSpec()
    clips, classes = discover_clips(data_dir, valid_share, seed)
    failures: list[str] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("extracting melgrams", total=len(clips))

        def on_clip(clip: Clip, error: str | None) -> None:
            if error:
                failures.append(error)
                console.print(f"[yellow]skipped[/] {error}", highlight=False)
            progress.advance(task)

        sets = load_segment_sets(clips, classes, spec, cache_dir or default_cache_dir(), on_clip)
    for split in (TRAIN, VALID):
        console.print(f"{split}: {len(sets[split].clips)} clips, {len(sets[split])} seconds")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, seed=seed)

    def on_epoch(record: EpochRecord) -> None:
        console.print(
            f"epoch {record.epoch:3d}  loss {record.train_loss:.3f}  "
            f"train acc {record.train_accuracy:.3f}  valid loss {record.valid_loss:.3f}  "
            f"valid acc/s {record.valid_accuracy:.3f}  "
            f"valid acc/clip {record.valid_clip_accuracy:.3f}  {record.seconds:.1f}s"
        )

    model, history = train_classifier(config, sets, classes, (spec.n_frames, spec.n_mels),
                                      chosen, on_epoch)
    provenance = {
        "data": str(data_dir),
        "command": command,
        "split": "clips.csv" if (data_dir / "clips.csv").is_file() else
                 f"seeded by clip, valid share {valid_share}",
        "clips": {split: len(s.clips) for split, s in sets.items()},
        "device": str(chosen),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "skipped_clips": failures,
    }
    card = write_run(out_dir, model, config, classes, spec, sets, history, chosen, provenance,
                     name)
    for split, figures in card.evaluation.items():
        console.print(
            f"{split}: accuracy per second {figures['per_second_accuracy']:.3f}, "
            f"per clip {figures['per_clip_accuracy']:.3f} "
            f"(macro-F1 {figures['per_clip_macro_f1']:.3f})"
        )
    console.print(f"checkpoint: {out_dir / 'model.safetensors'}  "
                  f"(use it with: genre-tag --weights {out_dir} SONG)")
    return 0
