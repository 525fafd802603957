from __future__ import annotations

import io
import json
import re

import numpy as np
from rich.console import Console

from tagger.render.emotion_picture import write_emotion_png
from tagger.render.emotion_records import EMOTION_RECORDS, SCHEMA, emotion_record
from tagger.render.emotion_terminal import (
    MAX_BLOCKS,
    describe,
    level,
    render_emotion,
    sparkline_layout,
)
from tagger.render.records import RecordOutputs
from tagger.results import EmotionResult
from tagger.tasks import TARGETS


def make_result(seconds: int, title: str = "song", silent: tuple[int, ...] = ()
                ) -> EmotionResult:
    t = np.arange(seconds)
    values = np.stack([0.5 + 0.4 * np.sin(t / 5), np.linspace(0, 1, seconds),
                       np.full(seconds, 0.3)], axis=1).astype(np.float32)
    mask = np.zeros(seconds, dtype=bool)
    mask[list(silent)] = True
    values[mask] = np.nan
    valid = np.ones(seconds)
    valid[-1] = 0.5
    return EmotionResult(source=f"/music/{title}.mp3", title=title, model="test-emotion",
                         targets=list(TARGETS), segment_seconds=1.0, values=values,
                         valid_seconds=valid, silent=mask)


def render(result: EmotionResult, width: int) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    render_emotion(result, console)
    return console.export_text()


def test_levels_and_words() -> None:
    assert level(0.0) == "▁" and level(1.0) == "█" and level(0.5) in "▄▅"
    assert describe("valence", 0.2) == "negative" and describe("energy", 0.9) == "intense"
    assert describe("danceability", 0.5) == "somewhat danceable"


def test_short_song_one_cell_a_second_with_silence() -> None:
    text = render(make_result(30, silent=(4, 5)), 80)
    lines = text.splitlines()
    valence = next(line for line in lines if line.startswith("valence "))
    assert len(re.sub(r"^valence\s+", "", valence)) == 30
    assert valence.count("·") == 2
    assert "1 cell = 1 second" in text and "2 silent seconds" in text
    assert re.search(r"energy\s+0\.\d\d", text)


def test_an_hour_fits_in_a_few_blocks_of_the_width() -> None:
    result = make_result(3600)
    text = render(result, 60)
    assert all(len(line) <= 60 for line in text.splitlines())
    cell_seconds, per_line = sparkline_layout(3600, 60 - 14)
    assert -(-3600 // cell_seconds) <= per_line * MAX_BLOCKS
    assert sum(line.startswith("danceability ") for line in text.splitlines()) <= MAX_BLOCKS
    assert f"1 cell = {cell_seconds} seconds" in text


def test_record_schema_and_silence_as_null(tmp_path) -> None:
    result = make_result(5, silent=(2,))
    record = emotion_record(result)
    assert record["schema"] == SCHEMA
    assert set(record) == {"schema", "source", "title", "duration", "model", "targets", "song",
                           "seconds"}
    assert record["duration"] == 4.5
    second = record["seconds"][2]
    assert second["silent"] and all(second[t] is None for t in TARGETS)
    assert record["song"]["energy"] == round(float(np.nanmean(result.values[:, 1])), 4)
    with RecordOutputs(EMOTION_RECORDS, str(tmp_path / "x.jsonl"), str(tmp_path / "x.csv"),
                       single_song=False) as outputs:
        outputs.add(result)
        outputs.add(make_result(3, "other"))
    lines = (tmp_path / "x.jsonl").read_text().splitlines()
    assert [json.loads(line)["title"] for line in lines] == ["song", "other"]
    rows = (tmp_path / "x.csv").read_text().splitlines()
    assert rows[0] == "source,title,scope,start,end,partial,silent,valence,energy,danceability"
    assert rows[1].split(",")[2:5] == ["song", "0.000", "4.500"]
    assert rows[4].endswith(",0,1,,,")  # the silent second
    write_emotion_png(result, tmp_path / "x.png")
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"


def test_non_finite_values_are_null_in_json_and_empty_in_csv(tmp_path) -> None:
    result = make_result(4)
    result.values[1, 0] = np.inf
    with RecordOutputs(EMOTION_RECORDS, str(tmp_path / "x.json"), str(tmp_path / "x.csv"),
                       single_song=True) as outputs:
        outputs.add(result)

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in JSON")

    record = json.loads((tmp_path / "x.json").read_text(), parse_constant=refuse)
    assert record["seconds"][1]["valence"] is None and record["song"]["valence"] is None
    rows = (tmp_path / "x.csv").read_text().splitlines()
    assert rows[1].split(",")[7] == "" and rows[3].split(",")[7] == ""
    assert "inf" not in (tmp_path / "x.csv").read_text()
