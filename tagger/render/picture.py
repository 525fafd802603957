"""The PNG view: genres on the y axis, seconds on the x axis (the course's figure).

Per-second probabilities are a heat map; the winning genre of each second is
marked with a dot in that genre's colour (neutral grey when the second is
uncertain), and silent seconds are shaded. A strip above the map shows the
segments in their genres' colours (grey when uncertain, none for silence), and
a dashed line marks each boundary between segments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MultipleLocator
from mpl_toolkits.axes_grid1 import make_axes_locatable

from tagger.atomic import atomic_open
from tagger.names import printable
from tagger.render.style import UNCERTAIN_COLOUR, genre_colours
from tagger.results import SongResult
from tagger.units import clock

UNCERTAIN_EDGE = "#404040"  # outlines uncertain dots, whose light grey the heat map would hide
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


def tick_step(n_seconds: int, max_ticks: int) -> int:
    """The smallest round step in seconds that gives at most ``max_ticks`` time labels."""
    return next((s for s in TICK_STEPS if n_seconds / s <= max_ticks), TICK_STEPS[-1])


def draw_segments(axes: Axes, strip: Axes, result: SongResult,
                  colours: dict[str, str]) -> None:
    """The segments on the ``strip`` above the heat map, and a dashed line on the map at
    each boundary."""
    for i, segment in enumerate(result.segments):
        if i:
            axes.axvline(segment.start, color="black", linestyle="--", linewidth=1, zorder=4)
        if segment.label is not None:
            colour = UNCERTAIN_COLOUR if segment.uncertain else colours[segment.label]
            strip.axvspan(segment.start, segment.end, color=colour)


def timeline_figure(result: SongResult) -> Figure:
    """The timeline of ``result`` as a matplotlib figure."""
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
    uncertain = result.uncertain
    dot_colours = [UNCERTAIN_COLOUR if u else colours[result.classes[w]]
                   for w, u in zip(winners[audible], uncertain[audible], strict=True)]
    dot_size = min(30, 3000 / result.n_seconds + 4)
    edge_colours = [UNCERTAIN_EDGE if u else "white" for u in uncertain[audible]]
    axes.scatter(centres[audible], winners[audible], s=dot_size, c=dot_colours,
                 edgecolors=edge_colours, linewidths=0.5, zorder=3)
    if uncertain.any():  # a legend entry under the time axis, on the row of its label
        marker = Line2D([], [], linestyle="", marker="o", markersize=6,
                        markerfacecolor=UNCERTAIN_COLOUR, markeredgecolor=UNCERTAIN_EDGE,
                        markeredgewidth=0.5,
                        label=f"uncertain (top probability < {result.uncertain_below:.2f})")
        axes.legend(handles=[marker], loc="upper right", bbox_to_anchor=(1, 0), fontsize=8,
                    frameon=False, borderaxespad=2.3, borderpad=0, handletextpad=0.2)
    for start in result.starts[result.silent]:
        axes.axvspan(start, start + result.segment_seconds, color="#f4cccc", zorder=1)
    divider = make_axes_locatable(axes)
    strip = divider.append_axes("top", size=0.15, pad=0.06, sharex=axes)
    strip.set_axis_off()
    draw_segments(axes, strip, result, colours)
    axes.set_yticks(range(n_classes), result.classes)
    for label, genre in zip(axes.get_yticklabels(), result.classes, strict=True):
        label.set_color(colours[genre])
    axes.xaxis.set_major_locator(MultipleLocator(tick_step(result.n_seconds, int(width))))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: clock(x)))
    axes.set_xlabel("time (mm:ss)")
    smoothing = f", smoothed over {result.smooth_seconds} s" if result.smooth_seconds > 1 else ""
    strip.set_title(f"{printable(result.title)} — genre per second ({result.model}{smoothing})",
                    parse_math=False, pad=8)
    figure.colorbar(image, cax=divider.append_axes("right", size=0.15, pad=0.1),
                    label="probability")
    figure.tight_layout()
    return figure


def write_png(result: SongResult, path: Path) -> None:
    """Draw the timeline of ``result`` and write it atomically to ``path``."""
    figure = timeline_figure(result)
    with atomic_open(path, "wb", encoding=None) as stream:
        figure.savefig(stream, format="png")
