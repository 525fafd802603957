"""The terminal view: a genre timeline that fits the width, then a song summary."""

from __future__ import annotations

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tagger.render.style import genre_colours, genre_keys
from tagger.results import SongResult, TimedResult
from tagger.units import clock

LABEL_WIDTH = 7  # "mm:ss │"
MAX_ROWS = 16
CELL_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
SILENT_KEY = "·"


def timeline_layout(n_seconds: int, width: int) -> tuple[int, int]:
    """Seconds per cell and cells per row so the timeline fits ``width`` and MAX_ROWS."""
    room = max(10, width - LABEL_WIDTH - 1)
    cells_per_row = min(60, room - room % 10) if room >= 10 else room
    for cell_seconds in CELL_SECONDS:
        cells = -(-n_seconds // cell_seconds)
        if -(-cells // cells_per_row) <= MAX_ROWS:
            return cell_seconds, cells_per_row
    return CELL_SECONDS[-1], cells_per_row


def cell_winners(result: SongResult, cell_seconds: int) -> list[int | None]:
    """The winning class index of each cell (mean probability over its audible seconds)."""
    winners: list[int | None] = []
    for start in range(0, result.n_seconds, cell_seconds):
        audible = ~result.silent[start : start + cell_seconds]
        if not audible.any():
            winners.append(None)
            continue
        mean = result.probabilities[start : start + cell_seconds][audible].mean(axis=0)
        winners.append(int(np.argmax(mean)))
    return winners


def timeline(result: SongResult, width: int) -> Text:
    colours, keys = genre_colours(result.classes), genre_keys(result.classes)
    cell_seconds, cells_per_row = timeline_layout(result.n_seconds, width)
    winners = cell_winners(result, cell_seconds)
    text = Text()
    for row_start in range(0, len(winners), cells_per_row):
        text.append(f"{clock(row_start * cell_seconds):>5} │", style="dim")
        for winner in winners[row_start : row_start + cells_per_row]:
            if winner is None:
                text.append(SILENT_KEY, style="dim")
            else:
                genre = result.classes[winner]
                text.append(keys[genre], style=f"bold black on {colours[genre]}")
        text.append("\n")
    scale = "1 cell = 1 second" if cell_seconds == 1 else f"1 cell = {cell_seconds} seconds"
    text.append(f"{'':>5}  {scale}; {SILENT_KEY} silence\n", style="dim")
    return text


def legend(result: SongResult, width: int) -> Text:
    """Key, colour and name of every genre, wrapped between entries to fit ``width``."""
    colours, keys = genre_colours(result.classes), genre_keys(result.classes)
    text, line_length = Text(), 0
    for genre in result.classes:
        entry_length = len(genre) + 6
        if line_length and line_length + entry_length > width:
            text.append("\n")
            line_length = 0
        text.append(f" {keys[genre]} ", style=f"bold black on {colours[genre]}")
        text.append(f" {genre}  ")
        line_length += entry_length
    return text


def summary_table(result: SongResult, top: int) -> Table:
    table = Table(box=None, padding=(0, 2), show_edge=False)
    table.add_column("genre")
    table.add_column("seconds won", justify="right")
    table.add_column("mean probability", justify="right")
    table.add_column("")
    colours = genre_colours(result.classes)
    for share in result.summary(top):
        bar = "█" * round(20 * share.share_of_seconds)
        table.add_row(share.genre, f"{share.share_of_seconds:.0%}",
                      f"{share.mean_probability:.2f}", Text(bar, style=colours[share.genre]))
    return table


def heading(result: TimedResult) -> Text:
    """The song's title, duration, model and count of silent seconds."""
    text = Text()
    text.append(result.title, style="bold")
    text.append(f"  {clock(result.duration)} ({result.duration:.1f} s), "
                f"model {result.model}", style="dim")
    silent = int(result.silent.sum())
    if silent:
        text.append(f", {silent} silent second{'s' * (silent != 1)}", style="dim")
    return text


def render_song(result: SongResult, console: Console, top: int) -> None:
    width = console.width
    console.print(Group(heading(result), timeline(result, width), legend(result, width), Text(""),
                        summary_table(result, top), Text("")), highlight=False)
