"""A training run's pictures and report: curves, confusion matrices, Grad-CAM, embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from tagger.atomic import atomic_open, atomic_write_text
from tagger.datasets.splits import Dataset, Split
from tagger.models import Classifier
from tagger.training.genre import GenreEpoch, predict_probabilities
from tagger.training.loop import Outcome


def save_figure(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    with atomic_open(path, "wb", encoding=None) as stream:
        figure.savefig(stream, format="png", dpi=100)


def plot_curves(history: list[GenreEpoch], path: Path) -> None:
    epochs = [h.epoch for h in history]
    figure = Figure(figsize=(10, 4))
    loss, accuracy = figure.subplots(1, 2)
    loss.plot(epochs, [h.train_loss for h in history], label="train")
    loss.plot(epochs, [h.valid_loss for h in history], label="valid")
    loss.set(xlabel="epoch", ylabel="loss", title="loss")
    accuracy.plot(epochs, [h.train_accuracy for h in history], label="train")
    accuracy.plot(epochs, [h.valid_accuracy for h in history], label="valid")
    if history[0].valid_clip_accuracy is not None:
        accuracy.plot(epochs, [h.valid_clip_accuracy for h in history], label="valid per clip")
    accuracy.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for axes in (loss, accuracy):
        axes.legend()
        axes.grid(alpha=0.3)
    save_figure(figure, path)


def plot_confusion(matrix: list[list[int]], classes: list[str], title: str, path: Path) -> None:
    values = np.array(matrix)
    size = 2.5 + 0.55 * len(classes)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set(xlabel="predicted", ylabel="true", title=title)
    for (row, column), value in np.ndenumerate(values):
        axes.text(column, row, str(value), ha="center", va="center",
                  color="white" if value > values.max() / 2 else "black", fontsize=8)
    figure.colorbar(image, ax=axes, fraction=0.046)
    save_figure(figure, path)


def gradcam(model: Classifier, inputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Grad-CAM maps ``(B, H, W)`` in [0, 1] of ``targets`` at ``model.gradcam_module``,
    resized to the input's (time, feature) shape."""
    layer = model.get_submodule(model.gradcam_module)
    captured: dict[str, torch.Tensor] = {}

    def hook(_: torch.nn.Module, __: Any, output: torch.Tensor) -> None:
        output.retain_grad()
        captured["maps"] = output

    handle = layer.register_forward_hook(hook)
    try:
        model.eval()
        with torch.enable_grad():
            logits = model(inputs)
            logits.gather(1, targets[:, None]).sum().backward()
    finally:
        handle.remove()
    maps = captured["maps"]
    grads = maps.grad
    if maps.dim() == 3:  # 1-D convolutions over time: (B, C, T)
        maps, grads = maps.unsqueeze(-1), grads.unsqueeze(-1)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * maps).sum(dim=1, keepdim=True))
    shape = inputs.shape[1:3] if inputs.dim() >= 3 else (1, inputs.shape[-1])
    cam = torch.nn.functional.interpolate(cam, size=tuple(shape), mode="bilinear",
                                          align_corners=False)[:, 0]
    peak = cam.amax(dim=(1, 2), keepdim=True).clamp(min=1e-12)
    return (cam / peak).detach().cpu().numpy()


def plot_gradcam(model: Classifier, split: Split, probabilities: np.ndarray,
                 classes: list[str], examples: int, folder: Path) -> list[Path]:
    """Per class, the first ``examples`` correctly and wrongly classified rows with their maps."""
    if split.features.ndim < 3:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    predicted = probabilities.argmax(1)
    written = []
    for index, name in enumerate(classes):
        rows = np.flatnonzero(split.labels == index)
        right = rows[predicted[rows] == index][:examples]
        wrong = rows[predicted[rows] != index][:examples]
        chosen = np.concatenate([right, wrong])
        if len(chosen) == 0:
            continue
        inputs = torch.from_numpy(split.features[chosen]).to(next(model.parameters()).device)
        maps = gradcam(model, inputs, torch.from_numpy(predicted[chosen]).to(inputs.device))
        figure = Figure(figsize=(3 * len(chosen), 5.5))
        axes = figure.subplots(2, len(chosen), squeeze=False)
        for column, (row, cam) in enumerate(zip(chosen, maps, strict=True)):
            melgram = split.features[row].reshape(cam.shape).T
            axes[0, column].imshow(melgram, origin="lower", aspect="auto", cmap="magma")
            axes[1, column].imshow(melgram, origin="lower", aspect="auto", cmap="gray")
            axes[1, column].imshow(cam.T, origin="lower", aspect="auto", cmap="jet", alpha=0.45)
            verdict = "right" if predicted[row] == index else f"as {classes[predicted[row]]}"
            clip_name = Path(split.clip_names[split.clip_ids[row]]).name
            axes[0, column].set_title(f"{clip_name[-30:]}\n{verdict}", fontsize=7)
            for axes_ in axes[:, column]:
                axes_.set_xticks([])
                axes_.set_yticks([])
        axes[0, 0].set_ylabel("input")
        axes[1, 0].set_ylabel("Grad-CAM")
        figure.suptitle(f"{name}: correctly and wrongly classified")
        path = folder / f"{name}.png"
        save_figure(figure, path)
        written.append(path)
    return written


def embeddings(model: Classifier, features: np.ndarray, device: torch.device) -> np.ndarray:
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(features), 256):
            batch = torch.from_numpy(features[start : start + 256]).to(device)
            outputs.append(model.embed(batch).float().cpu().numpy())
    return np.concatenate(outputs)


def plot_embeddings(points: np.ndarray, labels: np.ndarray, classes: list[str], title: str,
                    path: Path) -> None:
    figure = Figure(figsize=(7, 6))
    axes = figure.add_subplot()
    for index, name in enumerate(classes):
        chosen = labels == index
        if chosen.any():
            axes.scatter(points[chosen, 0], points[chosen, 1], s=6, alpha=0.6, label=name)
    axes.legend(markerscale=3, fontsize=8)
    axes.set_title(title)
    save_figure(figure, path)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def tsne_2d(vectors: np.ndarray, seed: int) -> np.ndarray:
    try:
        from sklearn.manifold import TSNE
    except ImportError as error:
        from tagger.errors import TaggerError

        raise TaggerError("--tsne needs scikit-learn", hint="pip install scikit-learn") from error
    return TSNE(n_components=2, random_state=seed, init="pca").fit_transform(vectors)


def write_report(out_dir: Path, outcome: Outcome, dataset: Dataset,
                 evaluation: dict[str, Any], device: torch.device, examples: int,
                 tsne: bool, seed: int) -> Path:
    """All pictures and ``report.md``, which links them; returns the report's path."""
    pictures = out_dir / "pictures"
    pictures.mkdir(parents=True, exist_ok=True)
    plot_curves(outcome.history, pictures / "curves.png")
    lines = [f"# Training report: {out_dir.name}", "",
             f"Layout `{dataset.layout}`, classes: {', '.join(dataset.classes)}. "
             f"{len(outcome.history)} epochs ({outcome.stopped}); weights of epoch "
             f"{outcome.kept_epoch} kept.", "", "| split | level | accuracy | macro-F1 |",
             "|---|---|---|---|"]
    for split, reports in evaluation.items():
        for level, report in reports.items():
            lines.append(f"| {split} | {level.removeprefix('per_')} | {report['accuracy']:.3f} "
                         f"| {report['macro_f1']:.3f} |")
    lines += ["", "![loss and accuracy](pictures/curves.png)", ""]
    for split, reports in evaluation.items():
        level = "per_clip" if "per_clip" in reports else next(iter(reports))
        name = f"confusion-{split}.png"
        plot_confusion(reports[level]["confusion_matrix"], dataset.classes,
                       f"{split}, {level.removeprefix('per_').replace('_', ' ')}", pictures / name)
        lines += [f"![confusion matrix, {split}](pictures/{name})", ""]
    shown = dataset.splits.get("test") or dataset.splits["valid"]
    shown_name = "test" if "test" in dataset.splits else "valid"
    if examples and outcome.model.gradcam_module is not None:
        probabilities = predict_probabilities(outcome.model, shown, device, dataset.context)
        for path in plot_gradcam(outcome.model, shown, probabilities, dataset.classes, examples,
                                 pictures / "gradcam"):
            lines += [f"Grad-CAM, {shown_name}: ![{path.stem}](pictures/gradcam/{path.name})",
                      ""]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(shown))[:2000])
    if shown_name in outcome.embedded:  # a frozen backbone's, computed for training
        vectors = outcome.embedded[shown_name].features[rows]
    else:
        vectors = embeddings(outcome.model, shown.features[rows], device)
    plot_embeddings(pca_2d(vectors), shown.labels[rows], dataset.classes,
                    f"PCA of penultimate-layer embeddings ({shown_name})",
                    pictures / "embeddings-pca.png")
    lines += ["![PCA of embeddings](pictures/embeddings-pca.png)", ""]
    if tsne:
        plot_embeddings(tsne_2d(vectors, seed), shown.labels[rows], dataset.classes,
                        f"t-SNE of penultimate-layer embeddings ({shown_name})",
                        pictures / "embeddings-tsne.png")
        lines += ["![t-SNE of embeddings](pictures/embeddings-tsne.png)", ""]
    report = out_dir / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    return report
