from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import matplotlib.colors
import numpy as np
import pytest
from rich.console import Console

from tagger.render.picture import timeline_figure, write_png
from tagger.render.records import GENRE_RECORDS, SCHEMA, RecordOutputs, song_record
from tagger.render.style import UNCERTAIN_COLOUR, genre_keys
from tagger.render.terminal import UNCERTAIN_KEY, render_song, timeline_layout
from tagger.results import SongResult

CLASSES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
           "reggae", "rock"]


def make_result(seconds: int, title: str = "song", seed: int = 0,
                silent: tuple[int, ...] = (), uncertain_below: float = 0.0) -> SongResult:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(seconds, len(CLASSES)))
    logits[:, 9] += 1.5  # mostly rock
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    silent_mask = np.zeros(seconds, dtype=bool)
    silent_mask[list(silent)] = True
    probabilities[silent_mask] = 0
    valid = np.ones(seconds)
    valid[-1] = 0.5
    return SongResult(source=f"/music/{title}.mp3", title=title, model="test-model",
                      classes=CLASSES, segment_seconds=1.0,
                      probabilities=probabilities.astype(np.float32), valid_seconds=valid,
                      silent=silent_mask, uncertain_below=uncertain_below)


def write_json(results: list[SongResult], target: str) -> None:
    with RecordOutputs(GENRE_RECORDS, target, None, single_song=len(results) == 1) as outputs:
        for result in results:
            outputs.add(result)


def write_csv(results: list[SongResult], target: str) -> None:
    with RecordOutputs(GENRE_RECORDS, None, target, single_song=len(results) == 1) as outputs:
        for result in results:
            outputs.add(result)


def test_song_record_schema() -> None:
    result = make_result(5, silent=(2,))
    record = song_record(result)
    assert record["schema"] == SCHEMA
    assert SCHEMA == "genre-tag/song/3"
    assert set(record) == {"schema", "source", "title", "duration", "model", "classes",
                           "uncertain_below", "thresholds", "familiarity_below",
                           "smooth_seconds", "segmentation", "summary", "seconds", "segments"}
    assert (record["uncertain_below"], record["smooth_seconds"]) == (0.0, 0)
    assert record["thresholds"] is None and record["familiarity_below"] is None
    assert record["summary"]["unfamiliar"] is False
    [only] = record["summary"]["song_genres"]  # no thresholds: the top genre, unless uncertain
    assert (only["genre"], only["threshold"]) == (record["summary"]["genre"], 0.0)
    assert record["summary"]["uncertain"] is False
    assert record["segmentation"] == {"min_segment_seconds": 10.0, "switch_penalty": 8.0}
    # five seconds of mostly rock, one of them silent: one segment, not a mix
    assert record["segments"] == [{"start": 0.0, "end": 4.5, "genre": "rock",
                                   "mean_probability": record["segments"][0]["mean_probability"],
                                   "uncertain": False, "silent": False}]
    assert record["summary"]["mixed"] == []
    assert record["summary"]["uncertain_share"] == 0.0
    assert record["duration"] == 4.5
    assert len(record["seconds"]) == 5
    first, silent, last = record["seconds"][0], record["seconds"][2], record["seconds"][-1]
    assert set(first) == {"start", "end", "genre", "probabilities", "partial", "silent",
                          "uncertain"}
    assert first["genre"] in CLASSES
    assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert first["genre"] == max(first["probabilities"], key=first["probabilities"].get)
    assert silent == {"start": 2.0, "end": 3.0, "genre": None, "probabilities": None,
                      "partial": False, "silent": True, "uncertain": False}
    assert (last["start"], last["end"], last["partial"]) == (4.0, 4.5, True)
    shares = [g["share_of_seconds"] for g in record["summary"]["genres"]]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    assert shares == sorted(shares, reverse=True)


def test_json_is_one_object_for_one_song_and_json_lines_for_several(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    write_json([make_result(4)], str(one))
    assert json.loads(one.read_text())["title"] == "song"
    several = tmp_path / "several.jsonl"
    write_json([make_result(4, "a"), make_result(6, "b")], str(several))
    lines = several.read_text().splitlines()
    assert [json.loads(line)["title"] for line in lines] == ["a", "b"]


def test_csv_has_one_row_per_second_with_every_probability(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    write_csv([make_result(3, "a"), make_result(4, "b", silent=(1,))], str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 7
    # the columns of song/1 where they were, then the scope: every row is a second
    assert [f"p_{g}" for g in CLASSES] == list(rows[0])[8:-1]
    assert list(rows[0])[-1] == "scope" and {row["scope"] for row in rows} == {"second"}
    assert rows[4]["silent"] == "1" and rows[4]["genre"] == "" and rows[4]["p_rock"] == ""
    assert {row["uncertain"] for row in rows} == {"0"}
    assert sum(float(rows[0][f"p_{g}"]) for g in CLASSES) == pytest.approx(1, abs=1e-3)
    assert rows[-1]["partial"] == "1" and rows[-1]["end"] == "3.500"


def test_png_is_written_for_a_ten_minute_song(tmp_path: Path) -> None:
    target = tmp_path / "song.png"
    write_png(make_result(600, silent=(10, 11)), target)
    header = target.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert width >= 1200 and 300 <= height <= 800
    assert not list(tmp_path.glob(".song.png.*"))  # no temporary file left behind


def median_top_probability(result: SongResult) -> float:
    """A threshold that makes about half of the audible seconds of ``result`` uncertain."""
    return float(np.median(result.probabilities[~result.silent].max(axis=1)))


def test_uncertain_seconds_are_marked_in_json_and_csv(tmp_path: Path) -> None:
    threshold = median_top_probability(make_result(20, silent=(3,)))
    result = make_result(20, silent=(3,), uncertain_below=threshold)
    expected = [not s and p.max() < threshold
                for p, s in zip(result.probabilities, result.silent, strict=True)]
    assert 5 <= sum(expected) <= 15
    record = song_record(result)
    assert [second["uncertain"] for second in record["seconds"]] == expected
    assert record["uncertain_below"] == threshold
    assert record["summary"]["uncertain_share"] == pytest.approx(sum(expected) / 19, abs=1e-4)
    for second in record["seconds"]:  # an uncertain second still names its top genre
        if second["uncertain"]:
            assert second["genre"] == max(second["probabilities"],
                                          key=second["probabilities"].get)
    target = tmp_path / "out.csv"
    write_csv([result], str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [row["uncertain"] == "1" for row in rows] == expected
    assert all(row["genre"] for row, s in zip(rows, result.silent, strict=True) if not s)


@pytest.mark.parametrize("seconds", [20, 3600])
def test_terminal_shows_uncertain_cells_in_grey_with_a_legend_entry(seconds: int) -> None:
    def rendered(threshold: float) -> str:
        console = Console(width=80, record=True, force_terminal=True, color_system="truecolor")
        render_song(make_result(seconds, silent=(3,), uncertain_below=threshold), console, top=3)
        return console.export_text(styles=True)

    grey_cell = f"48;2;{int(UNCERTAIN_COLOUR[1:3], 16)};"  # the background of a grey cell
    marked, unmarked = rendered(0.99), rendered(0.0)
    timeline_rows = [line for line in marked.splitlines() if "│" in line]
    assert UNCERTAIN_KEY in "".join(timeline_rows) and grey_cell in marked
    assert "uncertain (top probability < 0.99)" in marked
    assert "uncertain" not in unmarked and grey_cell not in unmarked
    assert UNCERTAIN_KEY not in "".join(line for line in unmarked.splitlines() if "│" in line)


def test_plain_output_marks_uncertain_seconds_by_their_key() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, no_color=True, force_terminal=False)
    result = make_result(20, uncertain_below=median_top_probability(make_result(20)))
    render_song(result, console, top=2)
    row = next(line for line in buffer.getvalue().splitlines() if "│" in line)
    cells = row.split("│", 1)[1]
    assert [cell == UNCERTAIN_KEY for cell in cells] == result.uncertain.tolist()


def test_png_draws_uncertain_seconds_grey_with_a_legend_entry() -> None:
    from matplotlib.colors import to_rgba

    def grey_dots_and_legend(result: SongResult) -> tuple[int, list[str]]:
        axes = timeline_figure(result).axes[0]
        faces = axes.collections[0].get_facecolors()
        grey = int(np.all(np.isclose(faces, to_rgba(UNCERTAIN_COLOUR)), axis=1).sum())
        legend = axes.get_legend()
        return grey, [t.get_text() for t in legend.get_texts()] if legend else []

    threshold = median_top_probability(make_result(30, silent=(5,)))
    result = make_result(30, silent=(5,), uncertain_below=threshold)
    grey, legend = grey_dots_and_legend(result)
    assert grey == result.uncertain.sum() > 0
    assert legend == [f"uncertain (top probability < {threshold:.2f})"]
    assert grey_dots_and_legend(make_result(30, silent=(5,))) == (0, [])


@pytest.mark.parametrize(("seconds", "width"), [(30, 80), (600, 80), (3600, 100), (7200, 40)])
def test_terminal_view_fits_the_width(seconds: int, width: int) -> None:
    console = Console(width=width, record=True, force_terminal=True, color_system="truecolor")
    render_song(make_result(seconds, silent=(3,), uncertain_below=0.99), console, top=3)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    timeline_rows = [line for line in text.splitlines() if "│" in line]
    assert 1 <= len(timeline_rows) <= 16
    assert "rock" in text


def test_long_songs_are_aggregated_into_cells_of_several_seconds() -> None:
    assert timeline_layout(30, 80) == (1, 60)
    cell_seconds, cells_per_row = timeline_layout(3600, 80)
    assert cell_seconds > 1 and -(-3600 // cell_seconds // cells_per_row) <= 16


def test_plain_output_without_colour_still_shows_genres_by_letter() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, no_color=True, force_terminal=False)
    render_song(make_result(20), console, top=2)
    text = buffer.getvalue()
    assert not re.search(r"\x1b\[[0-9;]*m", text)
    assert genre_keys(CLASSES)["rock"] * 3 in text
    assert len([line for line in text.splitlines() if line.startswith("  ") and "%" in line]) == 2


def test_genre_keys_are_distinct() -> None:
    keys = genre_keys([*CLASSES, "rock_metal_hardrock", "rap", "r&b"])
    assert len(set(keys.values())) == len(keys)


def test_non_finite_numbers_are_null_in_json_and_empty_in_csv(tmp_path: Path) -> None:
    result = make_result(4)
    result.probabilities[1, :] = np.nan
    result.probabilities[2, 0] = np.inf
    write_json([result], str(tmp_path / "out.json"))
    write_csv([result], str(tmp_path / "out.csv"))

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in JSON")

    record = json.loads((tmp_path / "out.json").read_text(), parse_constant=refuse)
    assert set(record["seconds"][1]["probabilities"].values()) == {None}
    assert record["seconds"][2]["probabilities"]["blues"] is None
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert {rows[1][f"p_{genre}"] for genre in CLASSES} == {""} and rows[2]["p_blues"] == ""
    assert "nan" not in (tmp_path / "out.csv").read_text().lower()


def test_titles_are_drawn_literally_in_the_png(tmp_path: Path) -> None:
    title = "Money $\\frac{ mix$ \udce9\nlive"  # mathtext, a byte that is not UTF-8, a newline
    write_png(make_result(5, title=title), tmp_path / "song.png")
    drawn = timeline_figure(make_result(5, title=title)).axes[1].get_title()  # over the strip
    assert drawn.startswith("Money $\\frac{ mix$ \\xe9\\nlive — genre per second")


def mix_result(lengths: tuple[int, ...] = (40, 30, 50), genres: tuple[int, ...] = (3, 4, 6)
               ) -> SongResult:
    """A mix of clear pieces: 0.8 on each piece's genre."""
    winners = np.repeat(genres, lengths)
    probabilities = np.full((len(winners), len(CLASSES)), 0.2 / (len(CLASSES) - 1))
    probabilities[np.arange(len(winners)), winners] = 0.8
    return SongResult(source="/music/mix.mp3", title="mix", model="test-model", classes=CLASSES,
                      segment_seconds=1.0, probabilities=probabilities,
                      valid_seconds=np.ones(len(winners)), silent=np.zeros(len(winners), bool),
                      uncertain_below=0.35)


def test_no_genre_is_drawn_in_a_grey_like_the_uncertain_marker() -> None:
    from tagger.render.style import PALETTE

    def spread(colour: str) -> int:
        channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        return max(channels) - min(channels)

    assert spread(UNCERTAIN_COLOUR) == 0
    assert all(spread(colour) > 30 for colour in PALETTE), PALETTE


def test_the_png_marks_segment_boundaries_and_the_segments_colours() -> None:
    from tagger.render.style import genre_colours

    figure = timeline_figure(mix_result())
    axes, strip = figure.axes[:2]  # the heat map, and the strip above it
    dashed = [line for line in axes.lines if line.get_linestyle() == "--"]
    assert sorted(line.get_xdata()[0] for line in dashed) == [40, 70]
    colours = genre_colours(CLASSES)
    figure.draw_without_rendering()  # lays the strip out above the map
    assert strip.get_position().y0 >= axes.get_position().y1
    assert [tuple(patch.get_facecolor()) for patch in strip.patches] == [
        matplotlib.colors.to_rgba(colours[g]) for g in ("disco", "hiphop", "metal")]
    assert not [line for line in timeline_figure(make_result(60)).axes[0].lines
                if line.get_linestyle() == "--"]


def test_a_mix_says_so_in_the_summary_and_lists_its_segments_when_asked() -> None:
    console = Console(width=100, record=True, color_system=None)
    render_song(mix_result(), console, top=3, show_segments=True)
    text = console.export_text()
    assert "mixed: metal 42 %, disco 33 %, hiphop 25 %" in text
    assert re.search(r"00:00-00:40\s+d\s+disco\s+0\.80", text)
    assert re.search(r"00:40-01:10\s+h\s+hiphop\s+0\.80", text)
    console = Console(width=100, record=True, color_system=None)
    render_song(make_result(60), console, top=3)
    assert "mixed" not in console.export_text() and "segment" not in console.export_text()


def test_csv_segment_rows_come_after_a_song_s_seconds_when_asked(tmp_path: Path) -> None:
    from tagger.render.records import genre_records

    target = tmp_path / "out.csv"
    with RecordOutputs(genre_records(with_segments=True), None, str(target),
                       single_song=True) as outputs:
        outputs.add(mix_result())
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [row["scope"] for row in rows] == ["second"] * 120 + ["segment"] * 3
    segments = rows[120:]
    assert [(r["start"], r["end"], r["genre"], r["uncertain"]) for r in segments] == [
        ("0.000", "40.000", "disco", "0"), ("40.000", "70.000", "hiphop", "0"),
        ("70.000", "120.000", "metal", "0")]
    assert segments[0]["p_disco"] == "0.8000" and segments[0]["partial"] == ""
