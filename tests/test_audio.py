from __future__ import annotations

import os
import re
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import FORMATS, chord, noise, synth_song, tone, write_audio

from tagger.audio import (
    audio_content_sha256,
    decode_blocks,
    decode_to_array,
    find_audio_files,
    seconds_list,
    segment_audio,
)
from tagger.errors import AudioError, DamagedAudioWarning, SilentAudioError

RATE = 8000


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("extension", sorted(FORMATS))
def test_every_format_decodes_to_mono_at_the_model_rate(tmp_path: Path, extension: str) -> None:
    path = write_audio(tmp_path / f"tone{extension}", tone(2.5, FORMATS[extension][3], 440.0),
                       channels=2)
    samples = decode_to_array(path, RATE)
    assert samples.dtype == np.float32 and samples.ndim == 1
    # Lossy codecs add priming samples; the length stays within 60 ms of 2.5 s.
    assert abs(len(samples) / RATE - 2.5) < 0.06
    assert dominant_frequency(samples[2000:18000], RATE) == pytest.approx(440.0, abs=2.0)
    assert 0.15 < np.abs(samples).max() < 0.45


def test_stereo_is_mixed_down_not_reduced_to_one_channel(tmp_path: Path) -> None:
    import av

    rate = 44100
    left, right = tone(2.0, rate, 440.0), tone(2.0, rate, 1000.0)
    path = tmp_path / "two.wav"
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="stereo")
        data = (np.stack([left, right]).T.reshape(1, -1) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
    samples = decode_to_array(path, RATE)
    spectrum = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    peak = spectrum.max()
    for frequency in (440.0, 1000.0):
        assert spectrum[np.abs(freqs - frequency) < 3].max() > 0.5 * peak


def test_decoding_streams_in_blocks_of_a_second(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "long.flac", noise(20.0, 44100), 44100)
    blocks = list(decode_blocks(path, RATE))
    assert sum(b.size for b in blocks) == pytest.approx(20 * RATE, abs=10)
    assert len(blocks) >= 20
    assert max(b.size for b in blocks) == RATE  # never the whole file at once


def assert_centred(segment: np.ndarray, source: np.ndarray) -> None:
    """``segment`` holds ``source`` without its DC offset."""
    np.testing.assert_allclose(segment, source - source.mean(), atol=1e-6)


def segments_of(samples: np.ndarray, source: str = "test") -> list:
    blocks = (samples[i : i + 1234] for i in range(0, len(samples), 1234))
    return list(segment_audio(blocks, RATE, source, min_partial_samples=800, silence_rms=1e-3,
                              sample_rate=RATE))


@pytest.mark.parametrize("damage", [np.nan, np.inf, -np.inf, 1e30])
def test_damaged_samples_are_muted_and_their_seconds_named(damage: float) -> None:
    samples = chord(6.5, RATE)
    samples[2 * RATE + 10 : 2 * RATE + 110] = damage  # a 100-sample glitch in 00:02
    samples[4 * RATE - 5 : 4 * RATE + 5] = damage  # one across 00:03 | 00:04
    samples[-100:] = damage  # and one in the partial last second
    with pytest.warns(DamagedAudioWarning) as caught:
        segments = segments_of(samples, "glitch.wav")
    assert [s.damaged_samples for s in segments] == [0, 0, 100, 5, 5, 0, 100]
    assert [s.silent for s in segments] == [False, False, True, True, True, False, True]
    assert all(np.isfinite(s.samples).all() and np.abs(s.samples).max() < 1 for s in segments)
    assert_centred(segments[1].samples, samples[RATE : 2 * RATE])
    assert len(caught) == 1
    assert str(caught[0].message) == (
        "glitch.wav: damaged samples (NaN, infinite or impossibly large) at 00:02-00:05, "
        "00:06-00:07 were muted, and those seconds are left out like silence (re-export or "
        "re-rip the file to analyse them)")


def test_long_lists_of_damaged_seconds_stay_one_short_line() -> None:
    assert seconds_list([0, 1, 2], 1.0) == "00:00-00:03"
    assert seconds_list(list(range(0, 7200, 2)), 1.0) == (
        "00:00-00:01, 00:02-00:03, 00:04-00:05, 00:06-00:07, 00:08-00:09 and 3595 more")
    assert seconds_list([3600], 3.0) == "3:00:00-3:00:03"


def test_loud_but_finite_samples_are_not_damaged() -> None:
    """A float file holding 16-bit integer values is badly scaled, not damaged."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        segments = segments_of(32767 * chord(2.0, RATE))
    assert [s.damaged_samples for s in segments] == [0, 0]


def test_audio_that_is_all_damaged_or_silent_is_an_error() -> None:
    samples = np.zeros(3 * RATE, np.float32)
    samples[RATE:] = np.nan
    with pytest.raises(AudioError, match=r"no usable audio.*00:01-00:03") as caught:
        segments_of(samples, "dead.wav")
    assert not isinstance(caught.value, SilentAudioError)


def test_segments_are_consecutive_and_the_last_partial_one_is_zero_padded() -> None:
    samples = chord(3.5, RATE)
    segments = segments_of(samples)
    assert [s.index for s in segments] == [0, 1, 2, 3]
    assert [s.partial for s in segments] == [False, False, False, True]
    assert segments[3].valid_samples == 4000
    assert_centred(segments[1].samples, samples[8000:16000])
    assert_centred(segments[3].samples[:4000], samples[24000:])
    assert not segments[3].samples[4000:].any()


def test_exact_seconds_have_no_partial_segment_and_a_tiny_tail_is_dropped() -> None:
    assert [s.partial for s in segments_of(chord(3.0, RATE))] == [False] * 3
    assert len(segments_of(np.concatenate([chord(3.0, RATE), chord(0.05, RATE)]))) == 3


def test_audio_under_one_second_is_an_error() -> None:
    with pytest.raises(AudioError, match="shorter than one second"):
        segments_of(chord(0.9, RATE), "short.wav")


def test_silent_seconds_are_flagged_and_all_silence_is_an_error() -> None:
    samples = np.concatenate([chord(1.0, RATE), np.zeros(RATE, np.float32), chord(1.0, RATE)])
    assert [s.silent for s in segments_of(samples)] == [False, True, False]
    with pytest.raises(SilentAudioError, match="digital silence"):
        segments_of(np.zeros(5 * RATE, np.float32), "quiet.wav")


def test_a_dc_offset_is_removed_and_a_constant_offset_is_silence() -> None:
    music = chord(2.5, RATE)
    segments = segments_of(music + 0.3)
    for segment, start in zip(segments, (0, RATE, 2 * RATE), strict=True):
        real = music[start : start + segment.valid_samples]
        assert_centred(segment.samples[: segment.valid_samples], real)
    assert not segments[2].samples[segments[2].valid_samples :].any()
    offset = np.concatenate([np.full(RATE, -0.5, np.float32), chord(1.0, RATE) + 0.5])
    assert [s.silent for s in segments_of(offset)] == [True, False]
    with pytest.raises(SilentAudioError, match="constant offset"):
        segments_of(np.full(3 * RATE, 0.01, np.float32), "hum.wav")


def test_bad_files_raise_one_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp3"
    empty.touch()
    text = tmp_path / "notes.mp3"
    text.write_text("these are not the droids you are looking for\n" * 50)
    cases = {
        tmp_path / "missing.mp3": "no such file",
        empty: "empty",
        text: "not a readable audio file",
        tmp_path: "folder",
    }
    for path, message in cases.items():
        with pytest.raises(AudioError, match=message) as caught:
            list(decode_blocks(path, RATE))
        assert str(path) in str(caught.value)
        assert "\n" not in str(caught.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes and sockets are POSIX")
def test_special_files_are_named_for_what_they_are(tmp_path: Path) -> None:
    """A FIFO, a socket and /dev/zero used to be "file is empty"."""
    fifo = tmp_path / "stream.mp3"
    os.mkfifo(fifo)
    link = tmp_path / "gone.mp3"
    link.symlink_to(tmp_path / "moved.mp3")
    socket_path = tmp_path / "s.wav"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(socket_path))
        cases = {
            fifo: "named pipe (FIFO), not an audio file (genre-tag reads files it can seek in",
            socket_path: "is a socket",
            Path("/dev/zero"): "is a character device",
            link: "is a broken link to",
        }
        for path, message in cases.items():
            with pytest.raises(AudioError, match=re.escape(message)) as caught:
                list(decode_blocks(path, RATE))
            assert str(caught.value).startswith(f"{path}: ")
            assert "\n" not in str(caught.value)


def test_truncated_file_is_reported(tmp_path: Path) -> None:
    whole = write_audio(tmp_path / "whole.flac", chord(20.0, 44100), 44100)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with pytest.raises(AudioError, match="truncated"):
        list(decode_blocks(cut, RATE))


def test_image_file_has_no_audio_stream(tmp_path: Path) -> None:
    import matplotlib.figure

    path = tmp_path / "cover.png"
    matplotlib.figure.Figure(figsize=(1, 1)).savefig(path)
    with pytest.raises(AudioError):
        list(decode_blocks(path, RATE))


def test_find_audio_files_is_recursive_sorted_and_skips_other_files(tmp_path: Path) -> None:
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    for name in ("b/deeper/x.FLAC", "a.mp3", "b/y.ogg", "cover.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"0")
    found = [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)]
    assert found == ["a.mp3", "b/deeper/x.FLAC", "b/y.ogg"]


@pytest.mark.parametrize("suffix", [".mp3", ".flac", ".m4a", ".wav"])
def test_the_audio_checksum_follows_the_audio_not_the_file(tmp_path: Path, suffix: str) -> None:
    song = write_audio(tmp_path / f"song{suffix}", synth_song(3.0, 44100, seed=1), 44100)
    moved = tmp_path / "elsewhere" / f"renamed{suffix}"
    moved.parent.mkdir()
    moved.write_bytes(song.read_bytes())
    other = write_audio(tmp_path / f"other{suffix}", synth_song(3.0, 44100, seed=2), 44100)
    assert audio_content_sha256(moved) == audio_content_sha256(song)
    assert audio_content_sha256(other) != audio_content_sha256(song)
