"""The course's comparison, measured: per-target models from scratch and with transfer,
multitask from scratch and with transfer, and clip pooling (mean vs learned attention).

    python -m tagger.training.compare --data ../shared/data --out runs/emotion-compare \\
        --threads 1 [--genre-weights CKPT] [--multitask-run runs/emotion]

Every row trains on the same clips with the same split, seed, epochs and
config as ``genre-tag retrain --task emotion``; only the targets and the
initialisation change. Transfer rows start from the genre model
(``--genre-weights``, default the bundled genre-musicnn11) with its
architecture and front end, scratch rows from emotion-cnn on the course's
default front end. ``--multitask-run`` reuses the figures of a retrain run
folder for the "multitask, transfer" row instead of training it again (with
the same seed and options the run is the same). Writes
``comparison.json`` and ``comparison.md`` (the tables for the model card).
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from tagger.atomic import atomic_write_text
from tagger.checkpoints import load_checkpoint
from tagger.datasets.splits import TRAIN, VALID, Split
from tagger.features import FrontEndSpec
from tagger.tasks import TARGETS
from tagger.training.emotion import (
    evaluate_clips,
    evaluate_model,
    loss_weights,
    multitask_loss,
    predict_seconds,
    subsample_seconds,
    train_emotion,
)
from tagger.training.options import EmotionConfig, EmotionOptions
from tagger.training.run import describe_start, load_data
from tagger.training.transfer import starting_point

ROWS: list[tuple[str, str, tuple[str, ...]]] = [
    *[(f"{t}, scratch", "scratch", (t,)) for t in TARGETS],
    *[(f"{t}, transfer", "genre", (t,)) for t in TARGETS],
    ("multitask, transfer", "genre", TARGETS),
]
EXTRA_ROW = ("multitask, scratch", "scratch", TARGETS)
POOLING_TRAIN_SECONDS = 8


def attention_pooling(
    model: torch.nn.Module, sets: dict[str, Split], targets: tuple[str, ...],
    device: torch.device, seed: int, steps: int = 300,
) -> dict[str, Any]:
    """Learn per-target attention over a clip's seconds on the training clips (backbone frozen).

    A clip's value becomes ``sum_t softmax_t(e_t . w_k + b_k) * p_t,k`` instead
    of the plain mean of the per-second values ``p_t,k``; ``e_t`` is the
    second's embedding. Scored like the mean, on the held-out clips.
    """
    torch.manual_seed(seed)
    padded = {}
    for split, per_clip in ((TRAIN, POOLING_TRAIN_SECONDS), (VALID, None)):
        emotion_set = subsample_seconds(sets[split], per_clip)
        predictions, embeddings = predict_seconds(model, emotion_set.features, device,
                                                  with_embeddings=True)
        assert embeddings is not None
        n_clips = len(emotion_set.clip_names)
        longest = int(np.bincount(emotion_set.clip_ids, minlength=n_clips).max())
        emb = np.zeros((n_clips, longest, embeddings.shape[1]), dtype=np.float32)
        pred = np.zeros((n_clips, longest, predictions.shape[1]), dtype=np.float32)
        mask = np.zeros((n_clips, longest), dtype=bool)
        position = np.zeros(n_clips, dtype=int)
        for row, clip in enumerate(emotion_set.clip_ids):
            emb[clip, position[clip]] = embeddings[row]
            pred[clip, position[clip]] = predictions[row]
            mask[clip, position[clip]] = True
            position[clip] += 1
        padded[split] = (torch.from_numpy(emb), torch.from_numpy(pred), torch.from_numpy(mask),
                         emotion_set)
    columns = [TARGETS.index(t) for t in targets]
    scorer = torch.nn.Linear(padded[TRAIN][0].shape[2], len(columns))
    torch.nn.init.zeros_(scorer.weight)
    torch.nn.init.zeros_(scorer.bias)  # starts as the plain mean

    def pooled(split: str) -> torch.Tensor:
        emb, pred, mask, _ = padded[split]
        scores = scorer(emb).masked_fill(~mask.unsqueeze(2), -math.inf)
        return (torch.softmax(scores, dim=1) * pred).sum(dim=1)

    train_targets = torch.from_numpy(padded[TRAIN][3].clip_targets[:, columns])
    weights = torch.from_numpy(loss_weights(train_targets.numpy()))
    optimizer = torch.optim.Adam(scorer.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(steps):
        loss = multitask_loss(pooled(TRAIN), train_targets, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        attention = pooled(VALID).numpy()
    _, valid_pred, valid_mask, valid_set = padded[VALID]
    mean = ((valid_pred * valid_mask.unsqueeze(2)).sum(dim=1)
            / valid_mask.sum(dim=1, keepdim=True)).numpy()
    return {"mean": evaluate_clips(mean, valid_set, targets),
            "attention": evaluate_clips(attention, valid_set, targets)}


def markdown_tables(rows: list[dict[str, Any]], pooling: dict[str, Any] | None) -> str:
    def cell(row: dict[str, Any], target: str, dataset: str | None = None) -> str:
        entry = row["valid"].get(target)
        if entry is None:
            return ""
        value = entry["spearman"] if dataset is None else \
            entry["per_dataset"].get(dataset, {}).get("spearman")
        return "" if value is None else f"{value:.3f}"

    lines = ["Spearman correlation of clip values (mean of the seconds) with the targets, "
             "on the held-out clips (4Q: unseen artists; Emotify: unseen clips).", "",
             "| model | valence | energy | danceability | 4Q valence | 4Q arousal "
             "| Emotify valence | Emotify energy | training |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['name']} | {cell(row, 'valence')} | {cell(row, 'energy')} | "
            f"{cell(row, 'danceability')} | {cell(row, 'valence', '4q')} | "
            f"{cell(row, 'energy', '4q')} | {cell(row, 'valence', 'emotify')} | "
            f"{cell(row, 'energy', 'emotify')} | {row['training_seconds'] / 60:.1f} min |")
    if pooling:
        lines += ["", "Clip pooling of the multitask transfer model (held-out clips):", "",
                  "| pooling | valence | energy | danceability |", "|---|---|---|---|"]
        for name, report in pooling.items():
            values = " | ".join(f"{report[t]['spearman']:.3f}" for t in TARGETS)
            lines.append(f"| {name} | {values} |")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", default=Path("runs/emotion-compare"),
              type=click.Path(path_type=Path))
@click.option("--epochs", default=12, type=click.IntRange(1))
@click.option("--seed", default=0, type=int)
@click.option("--valid-share", default=0.2, type=click.FloatRange(0, 1))
@click.option("--threads", default=0, type=click.IntRange(0))
@click.option("--cache-dir", type=click.Path(path_type=Path))
@click.option("--genre-weights", type=click.Path(path_type=Path),
              help="The genre checkpoint the transfer rows start from (default: the bundled one).")
@click.option("--multitask-run", type=click.Path(path_type=Path),
              help="A 'retrain --task emotion' run folder whose figures fill the last row.")
@click.option("--with-multitask-scratch", is_flag=True,
              help="Also train a multitask model from scratch (separates the two effects).")
def main(data_dir: Path, out_dir: Path, epochs: int, seed: int, valid_share: float,
         threads: int, cache_dir: Path | None, genre_weights: Path | None,
         multitask_run: Path | None, with_multitask_scratch: bool) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    if threads:
        torch.set_num_threads(threads)
    device = torch.device("cpu")
    starts = {init: starting_point(init, genre_weights) for init in ("scratch", "genre")}
    for init, start in starts.items():
        console.print(f"{init}: {describe_start(start)}", highlight=False)

    @functools.cache
    def data_through(spec: FrontEndSpec) -> tuple[dict[str, Split], list[str]]:
        """Every clip's melgrams through ``spec`` (loaded once per front end) and the layouts."""
        options = EmotionOptions(data=data_dir, valid_share=valid_share, cache_dir=cache_dir,
                                 train=EmotionConfig(seed=seed))
        dataset = load_data(options, console, spec)
        return dataset.splits, dataset.notes["layouts"]

    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "comparison.json"
    done = json.loads(results_path.read_text())["rows"] if results_path.is_file() else []
    rows: list[dict[str, Any]] = []
    for name, init, targets in [*ROWS, *([EXTRA_ROW] if with_multitask_scratch else [])]:
        if previous := next((r for r in done if r["name"] == name), None):
            rows.append(previous)
            continue
        if name == "multitask, transfer" and multitask_run:
            card = json.loads((multitask_run / "model.json").read_text())
            rows.append({"name": name, "valid": card["evaluation"][VALID]["per_target"],
                         "training_seconds": card["training"]["training_seconds"],
                         "from": str(multitask_run)})
        else:
            config = EmotionConfig(targets=targets, init=init, epochs=epochs, seed=seed)
            sets, _ = data_through(starts[init].spec)
            started = time.perf_counter()
            outcome, _ = train_emotion(config, sets, starts[init], device)
            elapsed = time.perf_counter() - started
            report, _ = evaluate_model(outcome.model, config, {VALID: sets[VALID]}, device,
                                       embedded=outcome.embedded)
            rows.append({"name": name, "valid": report[VALID]["per_target"],
                         "training_seconds": round(elapsed, 1),
                         "history": [h.valid_spearman for h in outcome.history]})
        console.print(f"{name}: " + ", ".join(f"{t} {e['spearman']}"
                                              for t, e in rows[-1]["valid"].items()),
                      highlight=False)
        atomic_write_text(results_path, json.dumps({"rows": rows}, indent=2) + "\n")
    pooling = None
    if multitask_run:
        run = load_checkpoint(multitask_run)
        assert run.card.front_end is not None
        pooling = attention_pooling(run.model, data_through(run.card.front_end)[0], TARGETS,
                                    device, seed)
        console.print("pooling: " + "; ".join(
            f"{k}: " + ", ".join(f"{t} {v[t]['spearman']}" for t in TARGETS)
            for k, v in pooling.items()), highlight=False)
    _, layouts = data_through(starts["genre"].spec)
    atomic_write_text(results_path, json.dumps(
        {"data": str(data_dir), "layouts": layouts, "epochs": epochs, "seed": seed,
         "rows": rows, "pooling": pooling}, indent=2) + "\n")
    atomic_write_text(out_dir / "comparison.md", markdown_tables(rows, pooling))
    console.print(markdown_tables(rows, pooling), highlight=False)


if __name__ == "__main__":
    main()
