"""Genre segments: the decoder on probability sequences with known answers, and mixes of
generated audio (crossfaded, and with silence between the pieces) through the CLI, with
the CUE sheets and chapters it writes read back."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from audio_fixtures import chord, noise, write_audio
from click.testing import CliRunner, Result
from download_site import serve_site

from tagger.cli import main
from tagger.results import SongResult
from tagger.segments import Segmenter, decode_states, runs

CLASSES = ["blues", "classical", "disco", "electronic", "hiphop"]
RATE = 16000
PIECE_SECONDS = 35.0
JOIN_SECONDS = 3.0


def probabilities_for(genres: list[int], seed: int = 0, top: float = 0.7,
                      flicker: float = 0.0) -> np.ndarray:
    """Per-second probabilities: ``top`` on each second's genre, the rest spread evenly;
    a ``flicker`` share of the seconds gives its top to another genre."""
    rng = np.random.default_rng(seed)
    n = len(genres)
    probabilities = np.full((n, len(CLASSES)), (1 - top) / (len(CLASSES) - 1))
    winners = np.array(genres)
    flickers = rng.random(n) < flicker
    winners[flickers] = (winners[flickers] + rng.integers(1, len(CLASSES), flickers.sum())
                         ) % len(CLASSES)
    probabilities[np.arange(n), winners] = top
    return probabilities


def song(probabilities: np.ndarray, silent: np.ndarray | None = None,
         uncertain_below: float = 0.35, **settings: float) -> SongResult:
    n = len(probabilities)
    silent = np.zeros(n, dtype=bool) if silent is None else silent
    probabilities = np.where(silent[:, None], 0.0, probabilities)
    return SongResult(source="mix.mp3", title="mix", model="test", classes=CLASSES,
                      segment_seconds=1.0, probabilities=probabilities,
                      valid_seconds=np.ones(n), silent=silent,
                      uncertain_below=uncertain_below, **settings)


def spans(result: SongResult) -> list[tuple[float, float, str | None, bool]]:
    return [(s.start, s.end, s.label, s.uncertain) for s in result.segments]


def test_known_change_points_are_found_through_flicker() -> None:
    genres = [2] * 60 + [4] * 45 + [1] * 50
    result = song(probabilities_for(genres, flicker=0.3))
    winners = result.winners()
    assert sum(a != b for a, b in itertools.pairwise(winners)) > 30  # the argmax flickers
    assert [(s.label, s.uncertain) for s in result.segments] == [
        ("disco", False), ("hiphop", False), ("classical", False)]
    assert [s.start for s in result.segments] == pytest.approx([0, 60, 105], abs=2)
    assert result.segments[-1].end == 155
    assert [genre for genre, _ in result.mixed()] == ["disco", "classical", "hiphop"]
    assert sum(share for _, share in result.mixed()) == pytest.approx(1)


def test_a_stretch_shorter_than_the_minimum_joins_its_neighbours() -> None:
    genres = [2] * 40 + [4] * 12 + [2] * 40
    assert [s[2] for s in spans(song(probabilities_for(genres), min_segment_seconds=20))
            ] == ["disco"]
    short = song(probabilities_for(genres), min_segment_seconds=10)
    assert spans(short) == [(0.0, 40.0, "disco", False), (40.0, 52.0, "hiphop", False),
                            (52.0, 92.0, "disco", False)]


def test_the_switching_penalty_trades_segments_for_evidence() -> None:
    genres = [2] * 30 + [4] * 30
    weak = probabilities_for(genres, top=0.4)  # against 0.15 for each other genre
    assert len(song(weak, uncertain_below=0, min_segment_seconds=1).segments) == 2
    assert len(song(weak, uncertain_below=0, min_segment_seconds=1,
                    switch_penalty=100).segments) == 1


def test_silence_between_pieces_is_a_segment_and_a_short_pause_is_not() -> None:
    genres = [2] * 40 + [2] * 4 + [4] * 40
    silent = np.zeros(len(genres), dtype=bool)
    silent[40:44] = True  # a gap between the pieces
    silent[10] = True  # a one-second pause inside the first
    result = song(probabilities_for(genres), silent)
    assert spans(result) == [(0.0, 40.0, "disco", False), (40.0, 44.0, None, False),
                             (44.0, 84.0, "hiphop", False)]
    assert result.segments[1].silent and result.segments[1].mean_probability is None


def test_the_same_genre_either_side_of_a_gap_is_two_segments_but_not_a_mix() -> None:
    silent = np.zeros(83, dtype=bool)
    silent[40:43] = True
    result = song(probabilities_for([2] * 83), silent)
    assert [s[2] for s in spans(result)] == ["disco", None, "disco"]
    assert result.mixed() == []


def test_a_stretch_without_a_clear_genre_is_one_uncertain_segment() -> None:
    flat = np.full((30, len(CLASSES)), 1 / len(CLASSES))
    probabilities = np.vstack([probabilities_for([2] * 40), flat, probabilities_for([4] * 40)])
    result = song(probabilities)
    assert [(s[0], s[1], s[3]) for s in spans(result)] == [
        (0.0, 40.0, False), (40.0, 70.0, True), (70.0, 110.0, False)]
    assert result.segments[1].mean_probability == pytest.approx(0.2)
    # the uncertain stretch is no clear segment: the mix is disco and hiphop, half each
    assert result.mixed() == [("disco", 0.5), ("hiphop", 0.5)]
    # without an uncertain state, the flat stretch goes to its neighbours
    assert not any(s.uncertain for s in song(probabilities, uncertain_below=0).segments)


def test_a_song_of_one_genre_is_one_segment_and_reads_as_before() -> None:
    result = song(probabilities_for([3] * 200, flicker=0.2))
    assert spans(result) == [(0.0, 200.0, "electronic", False)]
    assert result.mixed() == []
    assert result.summary()[0].genre == "electronic"


def test_a_recording_shorter_than_the_minimum_is_one_segment() -> None:
    result = song(probabilities_for([2] * 5 + [4] * 6))
    assert len(result.segments) == 1 and result.segments[0].end == 11.0


def brute_force(scores: np.ndarray, penalty: float, min_steps: int) -> float:
    """The best score over every labelling whose runs are all at least ``min_steps``."""
    n_steps, n_states = scores.shape
    best = -np.inf
    for labels in itertools.product(range(n_states), repeat=n_steps):
        found = runs(np.array(labels))
        if any(after - first < min_steps for first, after in found):
            continue
        total = scores[np.arange(n_steps), labels].sum() - penalty * (len(found) - 1)
        best = max(best, total)
    return best


@pytest.mark.parametrize(("min_steps", "penalty", "seed"),
                         [(1, 0.0, 0), (1, 1.5, 1), (2, 0.5, 2), (3, 1.0, 3), (3, 0.0, 4)])
def test_the_decoder_finds_the_best_labelling_there_is(min_steps: int, penalty: float,
                                                       seed: int) -> None:
    scores = np.log(np.random.default_rng(seed).dirichlet(np.ones(3), 8))
    labels = decode_states(scores, penalty, min_steps)
    found = runs(labels)
    assert all(after - first >= min_steps for first, after in found)
    total = scores[np.arange(8), labels].sum() - penalty * (len(found) - 1)
    assert total == pytest.approx(brute_force(scores, penalty, min_steps))


def test_hours_of_seconds_decode_with_every_run_at_least_the_minimum() -> None:
    scores = np.log(np.random.default_rng(5).dirichlet(np.ones(11), 4 * 3600))
    labels = decode_states(scores, 4.0, 20)
    assert len(labels) == 4 * 3600
    assert min(after - first for first, after in runs(labels)) >= 20


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="minimum segment"):
        Segmenter(1.0, -1.0)
    with pytest.raises(ValueError, match="switching penalty"):
        Segmenter(1.0, 20.0, float("nan"))


# Through real audio. The bundled model hears a steady chord as electronic and quiet noise
# as classical: two pieces of clearly different character.


def pieces() -> list[np.ndarray]:
    return [chord(PIECE_SECONDS, RATE), noise(PIECE_SECONDS, RATE, amplitude=0.02),
            chord(PIECE_SECONDS, RATE, root=165.0)]


def crossfaded(parts: list[np.ndarray]) -> np.ndarray:
    """Equal-power crossfades of JOIN_SECONDS between the parts."""
    join = round(JOIN_SECONDS * RATE)
    fade = np.linspace(0, np.pi / 2, join)
    mix = parts[0]
    for part in parts[1:]:
        mix = np.concatenate([mix[:-join], mix[-join:] * np.cos(fade) + part[:join] * np.sin(fade),
                              part[join:]])
    return mix


def with_gaps(parts: list[np.ndarray]) -> np.ndarray:
    gap = np.zeros(round(JOIN_SECONDS * RATE), dtype=np.float32)
    return np.concatenate([parts[0], gap, parts[1], gap, parts[2]])


@pytest.fixture(scope="module")
def mixes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mixes")
    write_audio(folder / "crossfaded mix.wav", crossfaded(pieces()), RATE)
    write_audio(folder / "mix with gaps.flac", with_gaps(pieces()), RATE)
    return folder


def tag(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu"])


def tag_mix(*args: str) -> Result:
    """``tag`` with the 11-genre model, which tells the synthetic pieces apart as electronic
    and classical (segmenting does not depend on the model)."""
    return tag(*args, "--weights", "genre-musicnn11")


def parse_cue(text: str) -> dict:
    """A CUE sheet read as the format's description has it: commands one per line, quoted
    strings, TRACK nn AUDIO, INDEX nn mm:ss:ff at 75 frames a second."""
    sheet: dict = {"tracks": []}
    for line in text.splitlines():
        command, _, rest = line.strip().partition(" ")
        if command == "FILE":
            name, kind = re.fullmatch(r'"([^"]*)" (WAVE|MP3|AIFF|BINARY|MOTOROLA)', rest).groups()
            sheet["file"], sheet["type"] = name, kind
        elif command == "TRACK":
            number, kind = rest.split()
            assert kind == "AUDIO" and int(number) == len(sheet["tracks"]) + 1
            sheet["tracks"].append({"indexes": {}})
        elif command == "TITLE":
            title = re.fullmatch(r'"([^"]*)"', rest).group(1)
            (sheet["tracks"][-1] if sheet["tracks"] else sheet)["title"] = title
        elif command == "INDEX":
            number, time = rest.split()
            minutes, seconds, frames = map(int, time.split(":"))
            assert seconds < 60 and frames < 75
            sheet["tracks"][-1]["indexes"][int(number)] = minutes * 60 + seconds + frames / 75
        else:
            assert command == "REM", line
    return sheet


def assert_three_pieces(segments: list[dict], boundaries: list[float]) -> None:
    audible = [s for s in segments if not s["silent"]]
    assert [s["genre"] for s in audible] == ["electronic", "classical", "electronic"]
    found = [(before["end"] + after["start"]) / 2 for before, after in
             itertools.pairwise(audible)]
    assert found == pytest.approx(boundaries, abs=3)


@pytest.mark.slow
def test_a_crossfaded_mix_gives_its_pieces_as_segments_cue_and_chapters(mixes: Path,
                                                                         tmp_path: Path) -> None:
    mix = mixes / "crossfaded mix.wav"
    out, cue, chapters = tmp_path / "mix.json", tmp_path / "mix.cue", tmp_path / "mix.txt"
    result = tag_mix(str(mix), "--segments", "--json", str(out), "--cue", str(cue),
                 "--chapters", str(chapters))
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["schema"] == "genre-tag/song/3"
    step = PIECE_SECONDS - JOIN_SECONDS
    assert_three_pieces(record["segments"], [step + JOIN_SECONDS / 2,
                                             2 * step + JOIN_SECONDS / 2])
    assert [m["genre"] for m in record["summary"]["mixed"]] == ["electronic", "classical"]
    assert re.search(r"mixed: electronic \d+ %, classical \d+ %\n", result.stdout)
    table = result.stdout[result.stdout.index("segment "):]
    assert re.search(r"00:00-00:3\d\s+e\s+electronic", table)
    assert "classical" in table

    sheet = parse_cue(cue.read_text())
    assert (cue.parent / sheet["file"]).resolve() == mix.resolve()  # relative to the sheet
    assert sheet["type"] == "WAVE" and sheet["title"] == mix.stem
    assert [t["title"] for t in sheet["tracks"]] == ["electronic", "classical", "electronic"]
    starts = [t["indexes"][1] for t in sheet["tracks"]]
    assert starts == pytest.approx([s["start"] for s in record["segments"]], abs=1 / 75)

    with av.open(str(chapters), format="ffmetadata") as container:
        assert container.metadata["title"] == mix.stem
        read = container.chapters()
    assert [c["metadata"]["title"] for c in read] == ["electronic", "classical", "electronic"]
    assert all(c["time_base"] == Fraction(1, 1000) for c in read)
    assert read[0]["start"] == 0 and read[-1]["end"] == round(record["duration"] * 1000)
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(read))


@pytest.mark.slow
def test_a_mix_with_silence_between_pieces_puts_the_gaps_before_the_tracks(
        mixes: Path, tmp_path: Path) -> None:
    mix = mixes / "mix with gaps.flac"
    out, cue, chapters = tmp_path / "gaps.csv", tmp_path / "gaps.cue", tmp_path / "gaps.ff"
    result = tag_mix(str(mix), "--segments", "--csv", str(out), "--cue", str(cue),
                 "--chapters", str(chapters), "--quiet")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    seconds = [r for r in rows if r["scope"] == "second"]
    segments = [r for r in rows if r["scope"] == "segment"]
    assert len(seconds) == round(3 * PIECE_SECONDS + 2 * JOIN_SECONDS)
    assert [(r["genre"], r["silent"]) for r in segments] == [
        ("electronic", "0"), ("", "1"), ("classical", "0"), ("", "1"), ("electronic", "0")]
    gap_starts = [PIECE_SECONDS, 2 * PIECE_SECONDS + JOIN_SECONDS]
    assert [float(r["start"]) for r in segments if r["silent"] == "1"] == gap_starts
    means = {k: float(v) for k, v in segments[2].items() if k.startswith("p_")}
    assert max(means, key=means.get) == "p_classical"  # the mean of every genre
    assert sum(means.values()) == pytest.approx(1, abs=1e-3)

    tracks = parse_cue(cue.read_text())["tracks"]
    assert [t["indexes"] for t in tracks] == [
        {1: 0.0},
        {0: gap_starts[0], 1: gap_starts[0] + JOIN_SECONDS},
        {0: gap_starts[1], 1: gap_starts[1] + JOIN_SECONDS}]
    with av.open(str(chapters), format="ffmetadata") as container:
        starts = [c["start"] for c in container.chapters()]
    assert starts == [0, round(gap_starts[0] * 1000), round(gap_starts[1] * 1000)]


@pytest.mark.slow
def test_several_songs_get_a_cue_sheet_and_chapters_each_in_folders(mixes: Path,
                                                                    tmp_path: Path) -> None:
    result = tag(str(mixes), "--cue", str(tmp_path / "cues"), "--chapters",
                 str(tmp_path / "chapters"), "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "cues").iterdir()) == [
        "crossfaded mix.cue", "mix with gaps.cue"]
    assert sorted(p.name for p in (tmp_path / "chapters").iterdir()) == [
        "crossfaded mix.chapters.txt", "mix with gaps.chapters.txt"]
    sheet = parse_cue((tmp_path / "cues" / "mix with gaps.cue").read_text())
    assert (tmp_path / "cues" / sheet["file"]).resolve() == (mixes / "mix with gaps.flac")


def test_cue_and_chapters_are_never_written_onto_an_input(mixes: Path, tmp_path: Path) -> None:
    mix = mixes / "crossfaded mix.wav"
    before = mix.read_bytes()
    for option in ("--cue", "--chapters"):
        result = tag(str(mix), option, str(mix), "--quiet")
        assert result.exit_code == 1
        assert f"is one of the inputs, which {option} would overwrite" in result.stderr
        assert "Traceback" not in result.stderr
    result = tag(str(mixes), "--cue", str(tmp_path / "one.cue"), "--quiet")
    assert result.exit_code == 1 and "--cue needs a folder" in result.stderr
    assert mix.read_bytes() == before


@pytest.mark.slow
def test_a_mix_from_a_url_gets_the_same_segments_and_a_cue_naming_it_by_title(
        mixes: Path, tmp_path: Path) -> None:
    with serve_site(tmp_path) as site:  # 127.0.0.1 only
        shutil.copy(mixes / "mix with gaps.flac", site.root / "long-mix.flac")
        url = f"{site.base}/long-mix.flac"
        out, cue, chapters = tmp_path / "url.json", tmp_path / "url.cue", tmp_path / "url.txt"
        result = tag_mix("--url", url, "--json", str(out), "--cue", str(cue), "--chapters",
                         str(chapters), "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["source"] == url
    assert [s["genre"] for s in record["segments"]] == [
        "electronic", None, "classical", None, "electronic"]
    sheet = parse_cue(cue.read_text())
    assert sheet["file"] == "long-mix.flac" and sheet["title"] == "long-mix"
    assert [t["title"] for t in sheet["tracks"]] == ["electronic", "classical", "electronic"]
    with av.open(str(chapters), format="ffmetadata") as container:
        assert len(container.chapters()) == 3
