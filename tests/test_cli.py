from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import (
    BAD_INPUTS,
    assert_bad_files_reported_and_good_ones_kept,
    assert_one_line_error,
    bad_input,
    mixed_music_folder,
)

from tagger import __version__
from tagger.cli import main
from tagger.inference import Tagger
from tagger.tasks import DEFAULT_GENRE_MODEL


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu"] if args[:1] != ("retrain",)
                              else list(args))


def test_help_and_version_answer_without_importing_torch() -> None:
    code = ("import sys; from click.testing import CliRunner; from tagger.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); "
            "assert r.exit_code == 0 and 'genre-tag' in r.output; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_python_dash_m_runs_the_cli() -> None:
    completed = subprocess.run([sys.executable, "-m", "tagger", "--version"],
                               capture_output=True, text=True, check=True)
    assert __version__ in completed.stdout


@pytest.mark.slow
def test_tagging_a_song_prints_a_timeline_and_summary(song_mp3: Path) -> None:
    result = run(str(song_mp3))
    assert result.exit_code == 0, result.output
    assert "synth song" in result.stdout
    assert "1 cell = 1 second" in result.stdout
    assert "seconds won" in result.stdout


@pytest.mark.slow
def test_every_output_at_once_and_inputs_left_untouched(song_mp3: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(song_mp3.read_bytes()).hexdigest()
    png, js, table = tmp_path / "t.png", tmp_path / "t.json", tmp_path / "t.csv"
    result = run(str(song_mp3), "--png", str(png), "--json", str(js), "--csv", str(table),
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert png.read_bytes()[:4] == b"\x89PNG"
    record = json.loads(js.read_text())
    assert record["source"] == str(song_mp3) and len(record["seconds"]) == 13
    assert record["seconds"][-1]["partial"] is True
    assert len(table.read_text().splitlines()) == 1 + 13
    assert hashlib.sha256(song_mp3.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json", "t.png"]


@pytest.mark.slow
def test_json_to_stdout_is_clean_json(song_mp3: Path) -> None:
    result = run(str(song_mp3), "--json", "-")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["schema"] == "genre-tag/song/3"


@pytest.mark.slow
def test_a_folder_run_goes_on_past_bad_files(tmp_path: Path) -> None:
    music = mixed_music_folder(tmp_path)
    out = tmp_path / "tags.jsonl"
    pngs = tmp_path / "pictures"
    pngs.mkdir()
    result = run(str(music), "--json", str(out), "--png", str(pngs), "--quiet")
    assert_bad_files_reported_and_good_ones_kept(result, out, pngs)


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_gets_one_line_and_a_failing_status(tmp_path: Path, name: str) -> None:
    path = bad_input(tmp_path, name)
    result = run(str(path))
    assert_one_line_error(result, str(path))


def test_folder_without_audio(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert_one_line_error(run(str(tmp_path)), str(tmp_path), "no audio files")


def test_unwritable_output_fails_before_any_work(song_mp3: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "folder" / "out.json"
    assert_one_line_error(run(str(song_mp3), "--json", str(target)), str(target))


def test_tampered_weights_are_refused(song_mp3: Path, tmp_path: Path) -> None:
    from tagger.cards import bundled_weights_path, card_path_for

    weights = tmp_path / "model.safetensors"
    data = bytearray(bundled_weights_path().read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    card_path_for(weights).write_bytes(card_path_for(bundled_weights_path()).read_bytes())
    assert_one_line_error(run(str(song_mp3), "--weights", str(weights)), "checksum")
    weights.write_bytes(b"not a checkpoint")
    card_path_for(weights).unlink()
    assert_one_line_error(run(str(song_mp3), "--weights", str(weights)), "checkpoint")


def test_missing_arguments_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["tag"])
    assert result.exit_code == 2
    assert "give at least one audio file" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run(str(tmp_path / "missing.mp3"), "--debug")
    assert result.exit_code != 0 and result.exception is not None


@pytest.mark.slow
def test_uncertain_below_marks_seconds_in_every_output(song_mp3: Path, tmp_path: Path) -> None:
    js, table = tmp_path / "t.json", tmp_path / "t.csv"
    result = run(str(song_mp3), "--uncertain-below", "0.99", "--json", str(js),
                 "--csv", str(table), "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads(js.read_text())
    flags = [second["uncertain"] for second in record["seconds"]]
    assert record["uncertain_below"] == 0.99 and sum(flags) >= 10
    assert record["summary"]["uncertain_share"] == pytest.approx(sum(flags) / 13, abs=1e-4)
    assert all(second["genre"] for second in record["seconds"])
    rows = table.read_text().splitlines()
    column = rows[0].split(",").index("uncertain")
    assert [row.split(",")[column] == "1" for row in rows[1:]] == flags
    shown = run(str(song_mp3), "--uncertain-below", "0.99")
    assert shown.exit_code == 0 and "uncertain (top probability < 0.99)" in shown.stdout


@pytest.mark.slow
def test_uncertain_below_zero_marks_nothing(song_mp3: Path) -> None:
    result = run(str(song_mp3), "--uncertain-below", "0", "--json", "-")
    record = json.loads(result.stdout)
    assert record["uncertain_below"] == 0.0 and record["summary"]["uncertain_share"] == 0.0
    assert not any(second["uncertain"] for second in record["seconds"])
    by_default = json.loads(run(str(song_mp3), "--json", "-").stdout)
    bundled = Tagger.load(device="cpu").card.calibration["uncertain_below"]
    assert by_default["uncertain_below"] == bundled > 0  # the bundled model is calibrated


@pytest.mark.slow
def test_smooth_averages_neighbouring_seconds(song_mp3: Path) -> None:
    from tagger.results import smooth_probabilities

    def probabilities(*options: str) -> tuple[dict, np.ndarray]:
        result = run(str(song_mp3), "--json", "-", *options)
        assert result.exit_code == 0, result.output
        record = json.loads(result.stdout)
        rows = [list(second["probabilities"].values()) for second in record["seconds"]]
        return record, np.array(rows)

    plain_record, plain = probabilities()
    record, smoothed = probabilities("--smooth", "5")
    assert (plain_record["smooth_seconds"], record["smooth_seconds"]) == (0, 5)
    silent = np.zeros(len(plain), dtype=bool)
    np.testing.assert_allclose(smoothed, smooth_probabilities(plain, silent, 5), atol=2e-4)
    assert not np.allclose(smoothed, plain, atol=1e-2)
    assert "smoothed over 5 s" in run(str(song_mp3), "--smooth", "5").stdout


@pytest.mark.parametrize(("options", "fragment"), [
    (("--smooth", "4"), "odd number of seconds"),
    (("--smooth", "-3"), "--smooth"),
    (("--smooth", "three"), "--smooth"),
    (("--uncertain-below", "1.5"), "--uncertain-below"),
    (("--uncertain-below", "-0.2"), "--uncertain-below"),
])
def test_bad_calibration_options_are_usage_errors(song_mp3: Path, options: tuple[str, str],
                                                  fragment: str) -> None:
    result = run(str(song_mp3), *options)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: Invalid value") and fragment in error


@pytest.mark.parametrize("option", ["--smooth", "--uncertain-below"])
def test_emotion_takes_no_genre_options(song_mp3: Path, option: str) -> None:
    result = CliRunner().invoke(main, ["emotion", str(song_mp3), option, "1"])
    assert result.exit_code == 2
    assert "No such option" in result.stderr and option in result.stderr


@pytest.mark.slow
def test_bundled_models_are_chosen_by_name(song_mp3: Path) -> None:
    default = json.loads(run(str(song_mp3), "--json", "-").stdout)
    fast = run(str(song_mp3), "--weights", "genre-sources11", "--json", "-")
    assert fast.exit_code == 0, fast.output
    assert default["model"] == DEFAULT_GENRE_MODEL
    assert json.loads(fast.stdout)["model"] == "genre-sources11"
    missing = run(str(song_mp3), "--weights", "genre-nonesuch")
    assert missing.exit_code != 0 and "no model weights here" in missing.output
