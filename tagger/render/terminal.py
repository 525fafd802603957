"""The terminal view: a genre timeline that fits the width, then a song summary.

Uncertain cells (no clear genre) are a ``?`` on neutral grey, silent ones a ``·``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tagger.names import printable
from tagger.render.style import UNCERTAIN_COLOUR, genre_colours, genre_keys
from tagger.results import SongResult, TimedResult
from tagger.units import clock

LABEL_WIDTH = 7  # "mm:ss │"
MAX_ROWS = 16
CELL_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
SILENT_KEY = "·"
UNCERTAIN_KEY = "?"
UNCERTAIN_STYLE = f"bold black on {UNCERTAIN_COLOUR}"


def timeline_layout(n_seconds: int, width: int) -> tuple[int, int]:
    """Seconds per cell and cells per row so the timeline fits ``width`` and MAX_ROWS."""
    room = max(10, width - LABEL_WIDTH - 1)
    cells_per_row = min(60, room - room % 10) if room >= 10 else room
    for cell_seconds in CELL_SECONDS:
        cells = -(-n_seconds // cell_seconds)
        if -(-cells // cells_per_row) <= MAX_ROWS:
            return cell_seconds, cells_per_row
    return CELL_SECONDS[-1], cells_per_row


class Cell(NamedTuple):
    """One cell of the timeline: the winning class index by mean probability over its
    audible seconds, and whether that mean's top is below the uncertain threshold."""

    winner: int
    uncertain: bool


def timeline_cells(result: SongResult, cell_seconds: int) -> list[Cell | None]:
    """The cells of ``cell_seconds`` seconds each; None for a silent cell."""
    cells: list[Cell | None] = []
    for start in range(0, result.n_seconds, cell_seconds):
        audible = ~result.silent[start : start + cell_seconds]
        if not audible.any():
            cells.append(None)
            continue
        mean = result.probabilities[start : start + cell_seconds][audible].mean(axis=0)
        cells.append(Cell(int(np.argmax(mean)), bool(mean.max() < result.uncertain_below)))
    return cells


def timeline(result: SongResult, cells: list[Cell | None], cell_seconds: int,
             cells_per_row: int) -> Text:
    colours, keys = genre_colours(result.classes), genre_keys(result.classes)
    text = Text()
    for row_start in range(0, len(cells), cells_per_row):
        text.append(f"{clock(row_start * cell_seconds):>5} │", style="dim")
        for cell in cells[row_start : row_start + cells_per_row]:
            if cell is None:
                text.append(SILENT_KEY, style="dim")
            elif cell.uncertain:
                text.append(UNCERTAIN_KEY, style=UNCERTAIN_STYLE)
            else:
                genre = result.classes[cell.winner]
                text.append(keys[genre], style=f"bold black on {colours[genre]}")
        text.append("\n")
    scale = "1 cell = 1 second" if cell_seconds == 1 else f"1 cell = {cell_seconds} seconds"
    smoothing = f"; smoothed over {result.smooth_seconds} s" if result.smooth_seconds > 1 else ""
    text.append(f"{'':>5}  {scale}; {SILENT_KEY} silence{smoothing}\n", style="dim")
    return text


def legend(result: SongResult, width: int, show_uncertain: bool) -> Text:
    """Key, colour and name of every genre (and of the uncertain state when
    ``show_uncertain``), wrapped between entries to fit ``width``."""
    colours, keys = genre_colours(result.classes), genre_keys(result.classes)
    entries = [(keys[genre], f"bold black on {colours[genre]}", genre)
               for genre in result.classes]
    if show_uncertain:
        entries.append((UNCERTAIN_KEY, UNCERTAIN_STYLE,
                        f"uncertain (top probability < {result.uncertain_below:.2f})"))
    text, line_length = Text(), 0
    for key, style, name in entries:
        entry_length = len(name) + 6
        if line_length and line_length + entry_length > width:
            text.append("\n")
            line_length = 0
        text.append(f" {key} ", style=style)
        text.append(f" {name}  ")
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


def mix_line(result: SongResult) -> Text:
    """``mixed: disco 40 %, electronic 35 %`` for a song of several clear segments of
    different genres (by their share of its clear segments' time); empty otherwise."""
    colours = genre_colours(result.classes)
    text = Text()
    for i, (genre, share) in enumerate(result.mixed()):
        text.append("mixed: " if i == 0 else ", ")
        text.append(genre, style=f"bold {colours[genre]}")
        text.append(f" {share:.0%}".replace("%", " %"))
    return text


def song_genres_line(result: SongResult) -> Text:
    """``song genres: pop; rnb`` (``SongResult.song_genres``), ``song genres: uncertain
    (top: pop 0.21)`` or ``unfamiliar music (...)`` for a song without any, or ``song
    genres: none (silence)``."""
    text = Text("song genres: ")
    if result.no_genre_reason() == "silent":
        return text.append("none (silence)", style="dim")
    colours = genre_colours(result.classes)
    if not (found := result.song_genres()):
        top = result.song_genre()
        mean = float(result.mean_probabilities()[result.classes.index(top)])
        state = "unfamiliar music" if result.unfamiliar else "uncertain"
        return text.append(f"{state} (top: {top} {mean:.2f})", style="dim")
    for i, genre in enumerate(found):
        text.append("; " if i else "")
        text.append(genre.genre, style=f"bold {colours[genre.genre]}")
    return text


def segments_table(result: SongResult) -> Table:
    """One row per segment: its time, genre (``?`` when uncertain) and mean probability."""
    table = Table(box=None, padding=(0, 2), show_edge=False)
    table.add_column("segment")
    table.add_column("genre")
    table.add_column("mean probability", justify="right")
    colours, keys = genre_colours(result.classes), genre_keys(result.classes)
    for segment in result.segments:
        span = f"{clock(segment.start)}-{clock(segment.end)}"
        if segment.label is None:
            table.add_row(span, Text(f"{SILENT_KEY} silence", style="dim"), "")
            continue
        key_style = (UNCERTAIN_STYLE if segment.uncertain
                     else f"bold black on {colours[segment.label]}")
        genre = Text(f" {UNCERTAIN_KEY if segment.uncertain else keys[segment.label]} ",
                     style=key_style)
        genre.append(f" {segment.label}" + (" (uncertain)" if segment.uncertain else ""))
        table.add_row(span, genre, f"{segment.mean_probability:.2f}")
    return table


def heading(result: TimedResult) -> Text:
    """The song's title (literally, on one line), duration, model and count of silent
    seconds."""
    text = Text()
    text.append(printable(result.title), style="bold")
    text.append(f"  {clock(result.duration)} ({result.duration:.1f} s), "
                f"model {result.model}", style="dim")
    silent = int(result.silent.sum())
    if silent:
        text.append(f", {silent} silent second{'s' * (silent != 1)}", style="dim")
    return text


def render_song(result: SongResult, console: Console, top: int,
                show_segments: bool = False) -> None:
    """The timeline, legend and summary (led by the song's genres and the mix line of a
    mixed song); with ``show_segments``, the segments after them."""
    width = console.width
    cell_seconds, cells_per_row = timeline_layout(result.n_seconds, width)
    cells = timeline_cells(result, cell_seconds)
    any_uncertain = any(cell is not None and cell.uncertain for cell in cells)
    parts = [heading(result), timeline(result, cells, cell_seconds, cells_per_row),
             legend(result, width, any_uncertain), Text("")]
    parts.append(song_genres_line(result))
    if mix := mix_line(result):
        parts.append(mix)
    parts += [summary_table(result, top), Text("")]
    if show_segments:
        parts += [segments_table(result), Text("")]
    console.print(Group(*parts), highlight=False)
