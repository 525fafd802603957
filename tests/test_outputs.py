"""Outputs never destroy inputs, devices or each other; any name is printed and written; and
a run that stops early keeps the songs it finished."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from audio_fixtures import chord, synth_song, write_audio
from click.testing import CliRunner, Result
from conftest import assert_one_line_error

from tagger import analysis
from tagger.cli import main
from tagger.inference import AudioModel, outputs_of
from tagger.results_cache import ModelOutputs

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--device", "cpu"])


def songs(folder: Path, *names: str) -> list[Path]:
    """Short songs of the given names (sub-folders made as needed)."""
    paths = []
    for seed, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.append(write_audio(path, synth_song(2.0, 44100, seed=seed), 44100))
    return paths


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def strict_json(text: str) -> object:
    """``text`` parsed as JSON that must hold no NaN or Infinity token."""
    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("option", ["--json", "--csv", "--png"])
def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path: Path,
                                                               option: str) -> None:
    first, second = songs(tmp_path, "a.wav", "b.wav")
    before = digest(second)
    assert_one_line_error(run(str(first), str(second), option, str(second)), str(second),
                          "one of the inputs")
    assert digest(second) == before
    link = tmp_path / "link.json"
    os.link(second, link)  # another name of the same file
    assert_one_line_error(run(str(tmp_path), option, str(link)), "one of the inputs")
    symlink = tmp_path / "out" / "symlink.csv"
    symlink.parent.mkdir()
    symlink.symlink_to(first)
    assert_one_line_error(run(str(first), option, str(symlink)), "one of the inputs")
    assert digest(second) == before and symlink.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav", "link.json", "out"]


def test_one_file_for_two_outputs_is_refused(tmp_path: Path) -> None:
    (song,) = songs(tmp_path, "a.wav")
    target = tmp_path / "out.txt"
    assert_one_line_error(run(str(song), "--json", str(target), "--csv", str(target)),
                          "both --json and --csv")
    assert_one_line_error(run(str(song), "--png", str(target), "--csv", str(target)),
                          "both --csv and --png")
    assert not target.exists()


def test_json_and_csv_cannot_both_go_to_standard_output(tmp_path: Path) -> None:
    (song,) = songs(tmp_path, "a.wav")
    result = run(str(song), "--json", "-", "--csv", "-")
    assert result.exit_code == 2 and "would mix on standard output" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("existing", [False, True])
def test_several_songs_need_a_png_folder_not_a_file(tmp_path: Path, existing: bool) -> None:
    songs(tmp_path / "music", "a.wav", "b.wav")
    png = tmp_path / "timeline.png"
    if existing:
        png.write_bytes(b"an earlier picture")
    assert_one_line_error(run(str(tmp_path / "music"), "--png", str(png)),
                          "2 songs are tagged", "needs a folder")
    assert png.read_bytes() == b"an earlier picture" if existing else not png.exists()


def test_songs_of_the_same_title_get_their_own_pngs(tmp_path: Path) -> None:
    songs(tmp_path / "music", "a/song.wav", "b/song.wav", "c/song.flac")
    pictures = tmp_path / "pictures"
    result = run(str(tmp_path / "music"), "--png", str(pictures), "--quiet")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in pictures.iterdir())
    assert names == ["song (2).png", "song (3).png", "song.png"]
    assert len({digest(pictures / name) for name in names}) == 3


def test_a_fifo_output_is_written_into_not_replaced(tmp_path: Path) -> None:
    (song,) = songs(tmp_path, "a.wav")
    fifo = tmp_path / "records.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so the writer's open returns
    try:
        result = run(str(song), "--json", str(fifo))
        assert result.exit_code == 0, result.output
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        received = os.read(reader, 1 << 16).decode()
    finally:
        os.close(reader)
    assert strict_json(received)["source"] == str(song)


def test_a_character_device_output_stays_a_device(tmp_path: Path) -> None:
    (song,) = songs(tmp_path, "a.wav")
    null = tmp_path / "null"
    try:  # a null device of our own: the machine's /dev/null is never at stake
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs privileges")
    result = run(str(song), "--json", str(null), "--csv", str(null), "--png", str(null),
                 "--quiet")
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "null"]


def test_an_output_through_a_symbolic_link_keeps_the_link(tmp_path: Path) -> None:
    (song,) = songs(tmp_path, "a.wav")
    real = tmp_path / "records" / "tags.json"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "tags.json"
    link.symlink_to(real)
    assert run(str(song), "--json", str(link), "--quiet").exit_code == 0
    assert link.is_symlink() and strict_json(real.read_text())["title"] == "a"


def odd_name(folder: Path, raw: bytes) -> Path:
    """A path in ``folder`` whose file name is the bytes ``raw``, as Python sees it."""
    return folder / os.fsdecode(raw)


def test_names_of_any_bytes_are_printed_literally_and_written_losslessly(
        tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    latin1 = write_audio(odd_name(music, b"caf\xe9.wav"), chord(2.0, 44100), 44100)
    write_audio(music / "[red]mix.wav", synth_song(2.0, 44100), 44100)
    (music / "[").mkdir()  # so that the bad file's path holds the closing tag "[/x]"
    bad = odd_name(music / "[", b"x] bad\nname \x1b[31m.mp3")
    bad.write_text("not audio\n" * 50)
    out, table, pictures = tmp_path / "tags.jsonl", tmp_path / "tags.csv", tmp_path / "png"
    result = run(str(music), "--json", str(out), "--csv", str(table), "--png", str(pictures))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "caf\\xe9" in result.stdout and "[red]mix" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("genre-tag")]
    assert len(errors) == 1 and "[/x] bad\\nname \\x1b[31m.mp3" in errors[0]
    assert "\x1b" not in result.stderr
    records = {r["title"]: r for r in map(strict_json, out.read_text().splitlines())}
    assert set(records) == {"caf\ufffd", "[red]mix"}
    record = records["caf\ufffd"]
    assert record["source"] == str(music / "caf\ufffd.wav")
    assert base64.b64decode(record["source_bytes"]) == os.fsencode(latin1)
    assert "source_bytes" not in records["[red]mix"]
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"))))
    assert {row["title"] for row in rows} == {"caf\ufffd", "[red]mix"}
    assert sorted(p.name for p in pictures.iterdir()) == ["_red_mix.png", "caf_.png"]


def test_a_newline_in_a_bad_file_name_keeps_the_error_on_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "two\nlines\u2028.mp3"
    bad.write_text("not audio\n" * 50)
    assert_one_line_error(run(str(bad)), "two\\nlines\\u2028.mp3")
    assert_one_line_error(run(str(tmp_path / "missing\r\n.mp3")), "missing\\r\\n.mp3")


def terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # as `kill` or `timeout` would


def interrupt() -> None:
    raise KeyboardInterrupt  # as Ctrl-C would


def crash() -> None:
    raise RuntimeError("a bug")


@pytest.fixture
def stop_on_second_song(monkeypatch: pytest.MonkeyPatch):
    """Stop the second song analysed with the ``stop`` function the test sets."""
    state = {"calls": 0, "stop": interrupt}

    def stopping(models: list[AudioModel], path: Path, source: str) -> list[ModelOutputs]:
        state["calls"] += 1
        if state["calls"] == 2:
            state["stop"]()
        return outputs_of(models, path, source)

    monkeypatch.setattr(analysis, "outputs_of", stopping)
    return state


@pytest.mark.parametrize("stop", [interrupt, terminate, crash])
def test_a_run_that_stops_keeps_the_songs_it_finished(tmp_path: Path, stop_on_second_song,
                                                      stop) -> None:
    stop_on_second_song["stop"] = stop
    music = tmp_path / "music"
    songs(music, "1.wav", "2.wav", "3.wav")
    out, table = tmp_path / "tags.jsonl", tmp_path / "tags.csv"
    out.write_text("an earlier run\n")
    handler_before = signal.getsignal(signal.SIGTERM)
    result = run(str(music), "--json", str(out), "--csv", str(table), "--quiet")
    if stop is crash:
        assert isinstance(result.exception, RuntimeError)
    elif stop is terminate:
        assert result.exit_code == 143 and "terminated" in result.stderr
    else:
        assert result.exit_code == 130 and "interrupted" in result.stderr
    lines = out.read_text().splitlines()
    assert [strict_json(line)["title"] for line in lines] == ["1"]
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert {row["title"] for row in rows} == {"1"} and len(rows) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["music", "tags.csv", "tags.jsonl"]
    assert signal.getsignal(signal.SIGTERM) is handler_before


def test_a_run_that_finishes_no_song_leaves_an_earlier_file_alone(
        tmp_path: Path, stop_on_second_song) -> None:
    stop_on_second_song["calls"] = 1  # the first song tagged is stopped
    (song,) = songs(tmp_path, "a.wav")
    out = tmp_path / "tags.json"
    out.write_text("an earlier run\n")
    assert run(str(song), "--json", str(out)).exit_code == 130
    assert out.read_text() == "an earlier run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "tags.json"]


def test_a_record_that_cannot_be_written_whole_leaves_no_partial_line(tmp_path: Path) -> None:
    """With the file size capped (as a full disk would), the second record does not fit:
    the file keeps the first one whole and nothing of the second."""
    target = tmp_path / "tags.jsonl"
    code = f"""
import resource, signal
from pathlib import Path
from tagger.atomic import record_file
from tagger.errors import OutputError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100, resource.RLIM_INFINITY))
try:
    with record_file(Path({str(target)!r})) as records:
        records.write(b'{{"song": 1, "padding": "' + b'x' * 40 + b'"}}\\n')
        records.write(b'{{"song": 2, "padding": "' + b'x' * 40 + b'"}}\\n')
except OutputError as error:
    print(error.message)
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "File too large" in completed.stdout
    assert [strict_json(line)["song"] for line in target.read_text().splitlines()] == [1]

