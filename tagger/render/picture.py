"""The PNG view: genres on the y axis, seconds on the x axis (the course's figure).

Per-second probabilities are a heat map; the winning genre of each second is
marked with a dot in that genre's colour, and silent seconds are greyed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from tagger.atomic import atomic_open
from tagger.render.style import genre_colours
from tagger.results import SongResult
from tagger.units import clock

TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def tick_step(n_seconds: int, max_ticks: int) -> int:
    """The smallest round step in seconds that gives at most ``max_ticks`` time labels."""
    return next((s for s in TICK_STEPS if n_seconds / s <= max_ticks), TICK_STEPS[-1])


def write_png(result: SongResult, path: Path) -> None:
    """Draw the timeline of ``result`` and write it atomically to ``path``."""
    n_classes = len(result.classes)
    width = float(np.clip(4 + result.n_seconds / 40, 8, 20))
    figure = Figure(figsize=(width, 1.6 + 0.38 * n_classes), dpi=100)
    axes = figure.add_subplot()
    extent = (0, result.n_seconds * result.segment_seconds, n_classes - 0.5, -0.5)
    image = axes.imshow(result.probabilities.T, aspect="auto", cmap="Greys",
                        vmin=0, vmax=1, interpolation="nearest", extent=extent)
    colours = genre_colours(result.classes)
    winners = result.probabilities.argmax(axis=1)
    audible = ~result.silent
    centres = result.starts + result.segment_seconds / 2
    axes.scatter(centres[audible], winners[audible], s=min(30, 3000 / result.n_seconds + 4),
                 c=[colours[result.classes[w]] for w in winners[audible]],
                 edgecolors="white", linewidths=0.5, zorder=3)
    for start in result.starts[result.silent]:
        axes.axvspan(start, start + result.segment_seconds, color="#f4cccc", zorder=1)
    axes.set_yticks(range(n_classes), result.classes)
    for label, genre in zip(axes.get_yticklabels(), result.classes, strict=True):
        label.set_color(colours[genre])
    axes.xaxis.set_major_locator(MultipleLocator(tick_step(result.n_seconds, int(width))))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: clock(x)))
    axes.set_xlabel("time (mm:ss)")
    axes.set_title(f"{result.title} — genre per second ({result.model})")
    figure.colorbar(image, ax=axes, pad=0.01, fraction=0.03, label="probability")
    figure.tight_layout()
    with atomic_open(path, "wb", encoding=None) as stream:
        figure.savefig(stream, format="png")
