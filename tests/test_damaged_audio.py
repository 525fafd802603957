"""Damaged samples (NaN, infinite) in a real file, through decoding, the bundled model and
the CLI: no NaN reaches the model or the outputs, and the user is told which seconds."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from audio_fixtures import synth_song, write_audio
from click.testing import CliRunner

from tagger.cli import main
from tagger.errors import DamagedAudioWarning
from tagger.inference import Tagger

RATE = 44100


def write_float_wav(path: Path, samples: np.ndarray) -> Path:
    """A 32-bit float WAV: the one common format that can hold NaN and infinities."""
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_f32le", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32),
                                           format="flt", layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def refuse_constant(token: str) -> None:
    raise AssertionError(f"JSON holds the non-standard token {token}")


@pytest.fixture(scope="module")
def glitched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six seconds of song with a 100-sample NaN glitch at 00:03 and infinities at 00:05."""
    samples = synth_song(6.0, RATE)
    samples[3 * RATE + 500 : 3 * RATE + 600] = np.nan
    samples[5 * RATE + 500 : 5 * RATE + 502] = np.inf
    return write_float_wav(tmp_path_factory.mktemp("damaged") / "glitch.wav", samples)


@pytest.mark.slow
def test_a_nan_glitch_gives_finite_answers_and_one_warning_line(glitched: Path) -> None:
    result = CliRunner().invoke(main, [str(glitched), "--json", "-", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout, parse_constant=refuse_constant)
    seconds = record["seconds"]
    assert [s["silent"] for s in seconds] == [False, False, False, True, False, True]
    assert [s["genre"] is None for s in seconds] == [False, False, False, True, False, True]
    for second in seconds:
        if not second["silent"]:
            assert abs(sum(second["probabilities"].values()) - 1) < 0.01
    assert all(np.isfinite(g["mean_probability"]) for g in record["summary"]["genres"])
    assert result.stderr.strip() == (
        f"genre-tag: warning: {glitched}: damaged samples (NaN, infinite or impossibly large) at "
        "00:03-00:04, 00:05-00:06 were muted, and those seconds are left out like silence "
        "(re-export or re-rip the file to analyse them)")


@pytest.mark.slow
def test_the_python_api_warns_with_the_damaged_seconds(glitched: Path, tagger_cpu) -> None:
    with pytest.warns(DamagedAudioWarning, match="00:03-00:04, 00:05-00:06"):
        result = tagger_cpu.tag_file(glitched)
    assert np.isfinite(result.probabilities).all()
    assert result.silent.tolist() == [False, False, False, True, False, True]



def test_a_dc_offset_does_not_change_the_genre(tmp_path: Path) -> None:
    """Before the fix this song with an offset of 0.3 was "blues", without it "rock": the
    offset's energy at 0 Hz set each second's dB reference level."""
    tagger = Tagger.load(Path("genre-sources11"), "cpu")
    song = 0.6 * synth_song(10.0, RATE)
    plain = tagger.tag_file(write_audio(tmp_path / "plain.flac", song, RATE))
    offset = tagger.tag_file(write_audio(tmp_path / "offset.flac", song + 0.3, RATE))
    assert plain.song_genre() == "rock"
    assert offset.winners() == plain.winners()
    np.testing.assert_allclose(offset.probabilities, plain.probabilities, atol=0.02)
