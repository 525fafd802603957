"""The terminal view of emotion: one sparkline per target over time, then the song values."""

from __future__ import annotations

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tagger.render.terminal import CELL_SECONDS, clock, heading
from tagger.results import EmotionResult

LEVELS = "▁▂▃▄▅▆▇█"
SILENT_KEY = "·"
MAX_BLOCKS = 4
TARGET_COLOURS = {"valence": "#2ca02c", "energy": "#d62728", "danceability": "#9467bd"}
# Words for a song value: below 0.4, 0.4-0.6, above 0.6 (0.5 is the middle of the training music).
WORDS = {
    "valence": ("negative", "neutral", "positive"),
    "energy": ("calm", "moderate", "intense"),
    "danceability": ("not danceable", "somewhat danceable", "danceable"),
}


def target_colour(target: str) -> str:
    return TARGET_COLOURS.get(target, "#1f77b4")


def describe(target: str, value: float) -> str:
    low, middle, high = WORDS.get(target, ("low", "middle", "high"))
    return low if value < 0.4 else high if value > 0.6 else middle


def sparkline_layout(n_seconds: int, room: int) -> tuple[int, int]:
    """Seconds per cell and cells per line so the song fits in MAX_BLOCKS blocks of ``room``."""
    cells_per_line = max(10, room - room % 10 if room >= 20 else room)
    for cell_seconds in CELL_SECONDS:
        if -(-n_seconds // cell_seconds) <= cells_per_line * MAX_BLOCKS:
            return cell_seconds, cells_per_line
    return CELL_SECONDS[-1], cells_per_line


def cell_values(result: EmotionResult, cell_seconds: int) -> np.ndarray:
    """Mean value of each cell's audible seconds, ``(cells, targets)``; NaN for silent cells."""
    cells = []
    for start in range(0, result.n_seconds, cell_seconds):
        rows = result.values[start : start + cell_seconds]
        audible = ~result.silent[start : start + cell_seconds]
        cells.append(rows[audible].mean(axis=0) if audible.any()
                     else np.full(len(result.targets), np.nan))
    return np.array(cells).reshape(-1, len(result.targets))


def level(value: float) -> str:
    return LEVELS[int(np.clip(round(value * (len(LEVELS) - 1)), 0, len(LEVELS) - 1))]


def sparklines(result: EmotionResult, width: int) -> Text:
    label_width = max(len(t) for t in result.targets) + 1
    cell_seconds, per_line = sparkline_layout(result.n_seconds, width - label_width - 1)
    cells = cell_values(result, cell_seconds)
    text = Text()
    for block_start in range(0, len(cells), per_line):
        block = cells[block_start : block_start + per_line]
        axis = "".join(f"{clock((block_start + i) * cell_seconds):<10}"
                       for i in range(0, len(block), 10))
        text.append(f"{'':<{label_width}}{axis[: len(block) + 5].rstrip()}\n", style="dim")
        for k, target in enumerate(result.targets):
            text.append(f"{target:<{label_width}}")
            for value in block[:, k]:
                if np.isnan(value):
                    text.append(SILENT_KEY, style="dim")
                else:
                    text.append(level(value), style=target_colour(target))
            text.append("\n")
    scale = "1 cell = 1 second" if cell_seconds == 1 else f"1 cell = {cell_seconds} seconds"
    text.append(f"{'':<{label_width}}{scale}; bar height 0-1; {SILENT_KEY} silence\n",
                style="dim")
    return text


def song_table(result: EmotionResult, width: int = 80) -> Table:
    bar_width = int(np.clip(width - 48, 5, 20))
    table = Table(box=None, padding=(0, 2), show_edge=False)
    table.add_column("song")
    table.add_column("value", justify="right")
    table.add_column("")
    table.add_column("")
    for target, value in result.song_values().items():
        filled = round(bar_width * value)
        bar = Text("█" * filled, style=target_colour(target))
        bar.append("░" * (bar_width - filled), style="dim")
        table.add_row(target, f"{value:.2f}", bar, describe(target, value))
    return table


def render_emotion(result: EmotionResult, console: Console) -> None:
    width = console.width
    console.print(Group(heading(result), sparklines(result, width), song_table(result, width),
                        Text("")), highlight=False)
