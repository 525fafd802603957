"""The PNG view of emotion: one strip per target, value over time, the song value dashed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from tagger.atomic import atomic_open
from tagger.names import printable
from tagger.render.emotion_terminal import describe, target_colour
from tagger.render.picture import tick_step
from tagger.results import EmotionResult
from tagger.units import clock


def write_emotion_png(result: EmotionResult, path: Path) -> None:
    """Draw the emotion strips of ``result`` and write them atomically to ``path``."""
    n_targets = len(result.targets)
    width = float(np.clip(4 + result.n_seconds / 40, 8, 20))
    figure = Figure(figsize=(width, 1.0 + 1.5 * n_targets), dpi=100)
    axes_list = figure.subplots(n_targets, 1, sharex=True, squeeze=False)[:, 0]
    edges = np.append(result.starts, result.starts[-1] + result.segment_seconds)
    song = result.song_values()
    for k, (axes, target) in enumerate(zip(axes_list, result.targets, strict=True)):
        colour = target_colour(target)
        values = result.values[:, k]
        axes.stairs(values, edges, color=colour, linewidth=1.2)
        axes.stairs(np.nan_to_num(values), edges, fill=True, color=colour, alpha=0.25)
        axes.axhline(song[target], color=colour, linestyle="--", linewidth=1)
        axes.text(1.005, song[target], f"{song[target]:.2f}\n{describe(target, song[target])}",
                  transform=axes.get_yaxis_transform(), va="center", fontsize=8, color=colour)
        for start in result.starts[result.silent]:
            axes.axvspan(start, start + result.segment_seconds, color="#dddddd", zorder=0)
        axes.set_ylim(0, 1)
        axes.set_yticks([0, 0.5, 1])
        axes.set_ylabel(target)
        axes.grid(axis="y", alpha=0.3)
    last = axes_list[-1]
    last.set_xlim(0, edges[-1])
    last.xaxis.set_major_locator(MultipleLocator(tick_step(result.n_seconds, int(width))))
    last.xaxis.set_major_formatter(FuncFormatter(lambda x, _: clock(x)))
    last.set_xlabel("time (mm:ss)")
    axes_list[0].set_title(f"{printable(result.title)} — emotion per second ({result.model}); "
                           "dashed: song value", parse_math=False)
    figure.tight_layout()
    with atomic_open(path, "wb", encoding=None) as stream:
        figure.savefig(stream, format="png")
