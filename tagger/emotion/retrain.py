"""``genre-tag retrain --task emotion``: emotion data in, run folder with checkpoint out."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import Progress

from tagger.devices import select_device
from tagger.emotion.datasets import (
    TRAIN,
    VALID,
    EmotionClip,
    EmotionSet,
    discover_emotion_clips,
    load_emotion_sets,
)
from tagger.emotion.model import StartingPoint, starting_point
from tagger.features import FrontEndSpec

# The training split is scored on this many evenly spaced seconds per clip (it is large).
TRAIN_EVAL_SECONDS = 8


def load_data(
    data_dir: Path, spec: FrontEndSpec, valid_share: float, seed: int, cache_dir: Path | None,
    console: Console,
) -> tuple[dict[str, EmotionSet], list[str], list[str]]:
    """Discover, split and extract melgrams of every clip through ``spec``, with a progress
    bar."""
    from tagger.datasets.audio import default_cache_dir

    clips, layouts = discover_emotion_clips(data_dir, valid_share, seed)
    failures: list[str] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("extracting melgrams", total=len(clips))

        def on_clip(clip: EmotionClip, error: str | None) -> None:
            if error:
                failures.append(error)
                console.print(f"[yellow]skipped[/] {error}", highlight=False)
            progress.advance(task)

        sets = load_emotion_sets(clips, spec, cache_dir or default_cache_dir(), on_clip)
    for split in (TRAIN, VALID):
        datasets = sets[split].datasets
        parts = ", ".join(f"{d} {int((datasets == d).sum())}" for d in sorted(set(datasets)))
        console.print(f"{split}: {len(sets[split].clips)} clips ({parts}), "
                      f"{len(sets[split])} seconds", highlight=False)
    return sets, layouts, failures


def split_note(layouts: list[str], valid_share: float, seed: int) -> str:
    units = {"4q": "4Q by artist", "emotify": "Emotify by clip", "ntua": "NTUA by clip"}
    return (f"seeded (seed {seed}), valid share {valid_share}: "
            + ", ".join(units[layout] for layout in layouts))


def describe_start(start: StartingPoint) -> str:
    """One line on where training starts: the genre model (or scratch) and its front end."""
    origin = (f"the backbone of {start.note['model']} ({start.note['path']})"
              if start.backbone is not None else "scratch")
    frames, mels = start.spec.input_shape
    return (f"{start.architecture} from {origin}; inputs {frames} frames x {mels} mel bands, "
            f"context {start.spec.context_segments}")


def print_evaluation(evaluation: dict[str, Any], console: Console) -> None:
    for split in (VALID, TRAIN):
        parts = []
        for target, entry in evaluation[split]["per_target"].items():
            datasets = ", ".join(f"{d} {e['spearman']}" for d, e in entry["per_dataset"].items())
            parts.append(f"{target} {entry['spearman']} ({datasets})")
        console.print(f"{split} Spearman per clip: " + "; ".join(parts), highlight=False)


def run_emotion_retrain(
    data_dir: Path, out_dir: Path, name: str, epochs: int, batch_size: int, lr: float,
    weight_decay: float, seed: int, valid_share: float, threads: int, cache_dir: Path | None,
    device: str, genre_weights: Path | None, command: str,
) -> int:
    """Fine-tune from the genre model ``genre_weights`` (default: the bundled one), whose
    front end the data goes through, and write the run folder."""
    from tagger.emotion.training import (
        EmotionConfig,
        EmotionEpoch,
        evaluate_model,
        train_emotion,
        write_emotion_run,
    )

    console = Console(stderr=True)
    if threads:
        torch.set_num_threads(threads)
    chosen = select_device(device)
    config = EmotionConfig(epochs=epochs, batch_size=batch_size, lr=lr,
                           weight_decay=weight_decay, seed=seed)
    start = starting_point(config.init, genre_weights)
    sets, layouts, failures = load_data(data_dir, start.spec, valid_share, seed, cache_dir,
                                        console)
    console.print(describe_start(start), highlight=False)

    def on_epoch(record: EmotionEpoch) -> None:
        scores = "  ".join(f"{k} {v}" for k, v in record.valid_spearman.items())
        console.print(f"epoch {record.epoch:3d}  loss {record.train_loss:.3f}  "
                      f"valid loss {record.valid_loss:.3f}  valid Spearman {scores}  "
                      f"{record.seconds:.1f}s", highlight=False)

    model, history, init, embedded = train_emotion(config, sets, start, chosen, on_epoch)
    evaluation, _ = evaluate_model(model, config, sets, chosen,
                                   seconds_per_clip={TRAIN: TRAIN_EVAL_SECONDS},
                                   embedded=embedded)
    provenance = {
        "data": str(data_dir),
        "layouts": layouts,
        "command": command,
        "split": split_note(layouts, valid_share, seed),
        "clips": {split: len(s.clips) for split, s in sets.items()},
        "init": init,
        "device": str(chosen),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "skipped_clips": failures,
    }
    write_emotion_run(out_dir, model, config, start, history, evaluation, provenance, name)
    print_evaluation(evaluation, console)
    console.print(f"checkpoint: {out_dir / 'model.safetensors'}  "
                  f"(use it with: genre-tag emotion --weights {out_dir} SONG)")
    return 0
