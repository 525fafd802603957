"""The results cache: a second run analyses only new or changed songs, whatever the options,
names and tags; it keeps what a stopped run finished; it is bounded, shown and cleared."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import chord, synth_song, write_audio
from click.testing import CliRunner, Result
from mutagen.flac import FLAC

from tagger import analysis, inference
from tagger.cli import main
from tagger.inference import AudioModel, EmotionTagger, Tagger, outputs_of
from tagger.results_cache import (
    ModelOutputs,
    ResultsCache,
    default_results_cache_path,
)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu"])


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """Three short songs, one of them in a sub-folder."""
    music = tmp_path / "music"
    (music / "album").mkdir(parents=True)
    write_audio(music / "album" / "one.flac", synth_song(3.0, 44100, seed=1), 44100)
    write_audio(music / "two.ogg", chord(2.0, 48000), 48000)
    write_audio(music / "three.wav", synth_song(2.5, 44100, seed=3), 44100)
    return music


@pytest.fixture
def analysed(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts the songs each model class really analyses (not read from the cache)."""
    counts: Counter = Counter()

    def counting(models: list[AudioModel], path: Path, source: str) -> list[ModelOutputs]:
        counts.update(type(model).__name__ for model in models)
        counts[Path(path).name] += 1
        return outputs_of(models, path, source)

    monkeypatch.setattr(analysis, "outputs_of", counting)
    return counts


def test_a_second_run_analyses_nothing_and_gives_the_same_records(
        tmp_path: Path, library: Path, analysed: Counter) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert run(str(library), "--json", str(first), "--quiet").exit_code == 0
    assert analysed["Tagger"] == 3
    result = run(str(library), "--json", str(second), "--quiet")
    assert result.exit_code == 0, result.output
    assert analysed["Tagger"] == 3  # nothing more
    assert records(second) == records(first)


def test_write_emotion_decodes_each_song_once_and_keeps_its_emotion_for_later(
        tmp_path: Path, library: Path, analysed: Counter,
        monkeypatch: pytest.MonkeyPatch) -> None:
    decodes: Counter = Counter()
    decode = inference.file_segments

    def counted(path: Path, *args: object) -> object:
        decodes[Path(path).name] += 1
        return decode(path, *args)

    monkeypatch.setattr(inference, "file_segments", counted)
    result = run(str(library), "--write-tags", "--write-emotion")
    assert result.exit_code == 0, result.output
    assert decodes == Counter({"one.flac": 1, "two.ogg": 1, "three.wav": 1})
    assert (analysed["Tagger"], analysed["EmotionTagger"]) == (3, 3)
    out = tmp_path / "emotion.jsonl"
    assert run("emotion", str(library), "--json", str(out), "--quiet").exit_code == 0
    assert analysed["EmotionTagger"] == 3 and sum(decodes.values()) == 3  # from the cache
    song = next(record["song"] for record in records(out) if record["title"] == "one")
    written = FLAC(library / "album" / "one.flac")
    for target in ("valence", "energy", "danceability"):  # two decimals, from four
        assert float(written[target.upper()][0]) == pytest.approx(song[target], abs=0.0051)


def test_write_emotion_on_cached_genres_runs_only_the_emotion_model(
        library: Path, analysed: Counter) -> None:
    assert run(str(library), "--quiet").exit_code == 0
    assert (analysed["Tagger"], analysed["EmotionTagger"]) == (3, 0)
    result = run(str(library), "--write-tags", "--write-emotion")
    assert result.exit_code == 0, result.output
    assert (analysed["Tagger"], analysed["EmotionTagger"]) == (3, 3)
    assert "written=3" in result.output and "from_cache=0" in result.output


def test_a_moved_renamed_and_retagged_file_is_still_a_hit(
        tmp_path: Path, library: Path, analysed: Counter) -> None:
    assert run(str(library), "--quiet").exit_code == 0
    moved = tmp_path / "elsewhere" / "renamed.flac"
    moved.parent.mkdir()
    shutil.move(library / "album" / "one.flac", moved)
    tags = FLAC(moved)
    tags["genre"] = "Blues"
    tags.save()
    out = tmp_path / "moved.json"
    result = run(str(moved), "--json", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    assert analysed["Tagger"] == 3
    record = json.loads(out.read_text())
    assert record["source"] == str(moved) and record["title"] == "renamed"


def test_changed_and_new_files_are_analysed(tmp_path: Path, library: Path,
                                            analysed: Counter) -> None:
    assert run(str(library), "--quiet").exit_code == 0
    changed = library / "three.wav"
    state = changed.stat()
    write_audio(changed, synth_song(2.5, 44100, seed=99), 44100)  # same size
    os.utime(changed, ns=(state.st_atime_ns, state.st_mtime_ns))  # and the same mtime
    assert changed.stat().st_size == state.st_size
    write_audio(library / "four.wav", chord(2.0, 44100, root=330.0), 44100)
    assert run(str(library), "--quiet").exit_code == 0
    assert analysed["three.wav"] == 2 and analysed["four.wav"] == 1
    assert analysed["one.flac"] == analysed["two.ogg"] == 1


def test_no_cache_analyses_every_song_again(library: Path, analysed: Counter) -> None:
    assert run(str(library), "--quiet").exit_code == 0
    assert run(str(library), "--quiet", "--no-cache").exit_code == 0
    assert analysed["Tagger"] == 6


def test_options_apply_to_cached_outputs(tmp_path: Path, library: Path, analysed: Counter,
                                         tagger_cpu: Tagger) -> None:
    """The raw outputs are cached: smoothing and the uncertain threshold of a later run are
    applied to them, with the same result as a fresh analysis."""
    assert run(str(library), "--quiet").exit_code == 0
    out = tmp_path / "smoothed.jsonl"
    options = ["--smooth", "3", "--uncertain-below", "0.9", "--json", str(out), "--quiet"]
    assert run(str(library), *options).exit_code == 0
    assert analysed["Tagger"] == 3
    song = library / "album" / "one.flac"
    fresh = tagger_cpu.tag_file(song, smooth_seconds=3, uncertain_below=0.9)
    cached = next(r for r in records(out) if r["title"] == "one")
    assert cached["smooth_seconds"] == 3
    probabilities = [[s["probabilities"][g] for g in fresh.classes] for s in cached["seconds"]]
    np.testing.assert_allclose(probabilities, fresh.probabilities, atol=5.1e-5)  # 4 decimals
    assert [s["uncertain"] for s in cached["seconds"]] == fresh.uncertain.tolist()


def test_each_model_and_task_has_its_own_results(library: Path, analysed: Counter) -> None:
    assert run(str(library), "--quiet").exit_code == 0
    assert run("emotion", str(library), "--quiet").exit_code == 0
    assert run(str(library), "--quiet", "--weights", "genre-sources11").exit_code == 0
    assert (analysed["Tagger"], analysed["EmotionTagger"]) == (6, 3)
    for command in ([], ["emotion"], ["--weights", "genre-sources11"]):
        assert run(*command, str(library), "--quiet").exit_code == 0
    assert (analysed["Tagger"], analysed["EmotionTagger"]) == (6, 3)


def test_a_stopped_run_keeps_the_songs_it_finished(library: Path, analysed: Counter,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    counting = analysis.outputs_of

    def stop_at_the_second(models: list[AudioModel], path: Path,
                           source: str) -> list[ModelOutputs]:
        if analysed["Tagger"] == 1:
            raise KeyboardInterrupt  # as Ctrl-C would
        return counting(models, path, source)

    monkeypatch.setattr(analysis, "outputs_of", stop_at_the_second)
    assert run(str(library), "--quiet").exit_code == 130
    monkeypatch.setattr(analysis, "outputs_of", counting)
    assert run(str(library), "--quiet").exit_code == 0
    assert analysed["Tagger"] == 3  # 1 before the stop, the 2 others after


def test_cache_info_and_clear_cover_the_results(library: Path) -> None:
    assert run(str(library), "--quiet").exit_code == 0
    info = CliRunner().invoke(main, ["cache", "info"])
    assert info.exit_code == 0
    assert f"results: {default_results_cache_path()}: 3 song results" in info.output
    assert "downloads: " in info.output
    cleared = CliRunner().invoke(main, ["cache", "clear", "results"])
    assert cleared.exit_code == 0 and "removed 3 song results" in cleared.output
    assert "files" not in cleared.output  # the downloads were not asked for
    assert "0 song results" in CliRunner().invoke(main, ["cache", "info"]).output


def constant_outputs(seconds: int, value: float, columns: int = 4) -> ModelOutputs:
    return ModelOutputs(np.full((seconds, columns), value, dtype=np.float32),
                        np.ones(seconds), np.zeros(seconds, dtype=bool))


def test_the_least_recently_used_results_go_when_the_cache_is_full(tmp_path: Path) -> None:
    cache = ResultsCache.open(tmp_path / "results.sqlite3")
    for name in ("a", "b", "c"):
        cache.put("model", name, constant_outputs(100, 0.5))
    size = cache.usage().size
    assert cache.get("model", "a") is not None  # now the most recently used
    assert cache.evict(max_bytes=size * 2 // 3) == 1
    assert [cache.has("model", name) for name in "abc"] == [True, False, True]
    assert cache.evict(max_bytes=size) == 0


def test_stored_outputs_come_back_exactly(tmp_path: Path, tagger_cpu: Tagger) -> None:
    song = write_audio(tmp_path / "song.flac", synth_song(4.5, 44100), 44100)
    outputs = tagger_cpu.outputs(song, str(song))
    cache = ResultsCache.open(tmp_path / "results.sqlite3")
    cache.put(tagger_cpu.checksum, "song", outputs)
    again = ResultsCache.open(tmp_path / "results.sqlite3").get(tagger_cpu.checksum, "song")
    for name in ("values", "valid_seconds", "silent"):
        assert np.array_equal(getattr(again, name), getattr(outputs, name))
        assert getattr(again, name).dtype == getattr(outputs, name).dtype


def test_a_cache_of_another_schema_version_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite3"
    ResultsCache.open(path).put("model", "a", constant_outputs(3, 0.1))
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 999")
    assert not ResultsCache.open(path).has("model", "a")


def test_an_emotion_result_from_cached_outputs_leaves_them_unchanged(tmp_path: Path) -> None:
    model = EmotionTagger.load(device="cpu")
    outputs = constant_outputs(3, 0.4, columns=len(model.card.classes))
    outputs.silent[1] = True
    result = model.result_from(outputs, "song", "song")
    assert np.isnan(result.values[1]).all() and not np.isnan(outputs.values).any()
