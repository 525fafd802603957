from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import synth_song, write_audio
from click.testing import CliRunner, Result
from conftest import (
    BAD_INPUTS,
    assert_bad_files_reported_and_good_ones_kept,
    assert_one_line_error,
    bad_input,
    mixed_music_folder,
    shared_data,
)

from tagger.cards import bundled_weights_path, card_path_for, sha256_of
from tagger.checkpoints import load_checkpoint
from tagger.cli import main
from tagger.errors import ModelError
from tagger.inference import EmotionTagger
from tagger.tasks import DEFAULT_EMOTION_MODEL, TARGETS


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["emotion", *args, "--device", "cpu"])


def test_bundled_emotion_card_is_complete_and_matches_its_weights() -> None:
    weights = bundled_weights_path(DEFAULT_EMOTION_MODEL)
    card = json.loads(card_path_for(weights).read_text())
    assert card["sha256"] == sha256_of(weights)
    assert card["task"] == "emotion" and card["classes"] == list(TARGETS)
    assert card["architecture"] == "emotion-joint"
    assert card["front_end"]["sample_rate"] == 16000 and card["front_end"]["n_mels"] == 96
    command = card["training"]["command"]
    assert command.startswith("genre-tag retrain --task emotion --data")
    init = card["training"]["init"]
    assert init["model"] == "genre-musicnn11" and init["frozen"]
    assert init["sha256"] == sha256_of(bundled_weights_path("genre-musicnn11"))
    assert card["training"]["layouts"] == ["4q", "emotify"]
    valid = card["evaluation"]["valid"]["per_target"]
    for target in TARGETS:
        assert -1 <= valid[target]["spearman"] <= 1 and valid[target]["clips"] > 0
    assert valid["valence"]["per_dataset"]["4q"]["clips"] > 100
    assert (weights.with_suffix(".md")).is_file()
    assert weights.stat().st_size < 20 * 2**20
    loaded = load_checkpoint(weights)
    assert loaded.card.name == DEFAULT_EMOTION_MODEL


@pytest.mark.slow
def test_emotion_of_a_song_in_the_terminal(song_mp3: Path) -> None:
    result = run(str(song_mp3))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "synth song" in out and "1 cell = 1 second" in out
    for target in TARGETS:
        assert target in out
    assert any(c in out for c in "▁▂▃▄▅▆▇█")


@pytest.mark.slow
def test_every_output_at_once_and_the_input_left_untouched(song_mp3: Path,
                                                           tmp_path: Path) -> None:
    before = hashlib.sha256(song_mp3.read_bytes()).hexdigest()
    png, js, table = tmp_path / "e.png", tmp_path / "e.json", tmp_path / "e.csv"
    result = run(str(song_mp3), "--png", str(png), "--json", str(js), "--csv", str(table),
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert png.read_bytes()[:4] == b"\x89PNG"
    record = json.loads(js.read_text())
    assert record["schema"] == "genre-tag/emotion/1" and record["targets"] == list(TARGETS)
    assert len(record["seconds"]) == 13 and record["seconds"][-1]["partial"] is True
    for second in record["seconds"]:
        assert all(0 <= second[t] <= 1 for t in TARGETS)
    for target in TARGETS:
        mean = np.mean([s[target] for s in record["seconds"]])
        assert record["song"][target] == pytest.approx(mean, abs=1e-3)
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [r["scope"] for r in rows] == ["song"] + ["second"] * 13
    assert float(rows[0]["valence"]) == pytest.approx(record["song"]["valence"], abs=1e-4)
    assert hashlib.sha256(song_mp3.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv", "e.json", "e.png"]


@pytest.mark.slow
def test_emotion_tagger_matches_the_cli_and_marks_silence(tmp_path: Path) -> None:
    samples = synth_song(4.0, 44100, seed=2)
    samples[44100:88200] = 0.0
    song = write_audio(tmp_path / "gap.wav", samples, 44100)
    result = EmotionTagger.load(device="cpu").tag_file(song)
    assert result.values.shape == (4, 3)
    assert result.silent.tolist() == [False, True, False, False]
    assert np.isnan(result.values[1]).all()
    values = result.song_values()
    assert values["energy"] == pytest.approx(float(np.nanmean(result.values[:, 1])))
    record = json.loads(run(str(song), "--json", "-").stdout)
    assert record["seconds"][1]["valence"] is None and record["seconds"][1]["silent"]


@pytest.mark.slow
def test_a_folder_run_goes_on_past_bad_files(tmp_path: Path) -> None:
    music = mixed_music_folder(tmp_path)
    out, pngs = tmp_path / "emotion.jsonl", tmp_path / "pictures"
    pngs.mkdir()
    csv_out = tmp_path / "emotion.csv"
    result = run(str(music), "--json", str(out), "--csv", str(csv_out), "--png", str(pngs),
                 "--quiet")
    assert_bad_files_reported_and_good_ones_kept(result, out, pngs)
    rows = list(csv.DictReader(io.StringIO(csv_out.read_text())))
    assert sum(r["scope"] == "song" for r in rows) == 2 and len(rows) == 2 + 3 + 2


def test_a_name_that_is_not_utf8_is_written_as_strict_json(tmp_path: Path) -> None:
    import base64
    import os

    song = write_audio(tmp_path / os.fsdecode(b"ni\xf1a.wav"), synth_song(2.0, 44100), 44100)
    result = run(str(song), "--json", "-")
    assert result.exit_code == 0, result.output

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in JSON")

    record = json.loads(result.stdout, parse_constant=refuse)
    assert record["title"] == "ni\ufffda"
    assert base64.b64decode(record["source_bytes"]) == os.fsencode(song)


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_gets_one_line_and_a_failing_status(tmp_path: Path, name: str) -> None:
    path = bad_input(tmp_path, name)
    assert_one_line_error(run(str(path)), str(path))


def test_unwritable_output_and_usage_errors(song_mp3: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "out.csv"
    assert_one_line_error(run(str(song_mp3), "--csv", str(target)), str(target))
    assert_one_line_error(run(str(tmp_path)), "no audio files")
    usage = CliRunner().invoke(main, ["emotion"])
    assert usage.exit_code == 2 and "give at least one audio file" in usage.stderr


def test_models_of_the_other_task_are_refused(song_mp3: Path) -> None:
    genre = bundled_weights_path()
    assert_one_line_error(run(str(song_mp3), "--weights", str(genre)), "not an emotion model")
    emotion = bundled_weights_path(DEFAULT_EMOTION_MODEL)
    result = CliRunner().invoke(main, [str(song_mp3), "--weights", str(emotion),
                                       "--device", "cpu"])
    assert_one_line_error(result, "not a genre model")
    with pytest.raises(ModelError):
        EmotionTagger.load(genre, device="cpu")


def test_tampered_emotion_weights_are_refused(song_mp3: Path, tmp_path: Path) -> None:
    source = bundled_weights_path(DEFAULT_EMOTION_MODEL)
    weights = tmp_path / "model.safetensors"
    data = bytearray(source.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    card_path_for(weights).write_bytes(card_path_for(source).read_bytes())
    assert_one_line_error(run(str(song_mp3), "--weights", str(weights)), "checksum")


@pytest.mark.slow
def test_bundled_model_orders_real_4q_clips_by_quadrant() -> None:
    """On 4Q clips of held-out artists, Q1 (positive, high) sits above Q3 (negative, low)."""
    folder = shared_data("4q")
    card = json.loads(card_path_for(bundled_weights_path(DEFAULT_EMOTION_MODEL)).read_text())
    rows = list(csv.DictReader(io.StringIO((folder / "labels.csv").read_text("utf-8"))))
    from tagger.datasets.sources import discover_emotion_clips

    clips, _ = discover_emotion_clips(folder, 0.2, card["training"]["config"]["seed"])
    held_out = {c.key.split(":", 1)[1] for c in clips if c.split == "valid"}
    chosen = {q: [r["file"] for r in rows if r["quadrant"] == q and r["file"] in held_out][:4]
              for q in ("Q1", "Q3")}
    tagger = EmotionTagger.load(device="cpu")
    songs = {q: [tagger.tag_file(folder / f).song_values() for f in files]
             for q, files in chosen.items()}
    for target in ("valence", "energy"):
        q1 = np.mean([s[target] for s in songs["Q1"]])
        q3 = np.mean([s[target] for s in songs["Q3"]])
        assert q1 > q3, target


@pytest.mark.slow
def test_python_api(song_mp3: Path) -> None:
    import tagger

    result = tagger.tag_emotion(song_mp3, device="cpu")
    assert result.targets == list(TARGETS) and result.n_seconds == 13
    assert set(result.song_values()) == set(TARGETS)


@pytest.fixture
def local_site(tmp_path: Path):
    """A local HTTP server on 127.0.0.1 serving a song and a fake MP3."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    root = tmp_path / "site"
    root.mkdir()
    write_audio(root / "song.mp3", synth_song(3.0, 44100), 44100)
    (root / "fake.mp3").write_text("<html>not audio at all</html>" * 20)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.slow
def test_emotion_of_a_url(local_site: str) -> None:
    url = f"{local_site}/song.mp3"
    result = run("--url", url, "--json", "-")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["source"] == url and len(record["seconds"]) == 3
    bad = run("--url", f"{local_site}/fake.mp3")
    assert_one_line_error(bad, f"{local_site}/fake.mp3")
