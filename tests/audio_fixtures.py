"""Small test signals, encoded with PyAV to real files of every supported format."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

# extension -> (container format, codec, sample format, sample rate)
FORMATS: dict[str, tuple[str, str, str, int]] = {
    ".mp3": ("mp3", "libmp3lame", "s16p", 44100),
    ".wav": ("wav", "pcm_s16le", "s16", 44100),
    ".flac": ("flac", "flac", "s16", 44100),
    ".ogg": ("ogg", "libopus", "flt", 48000),
    ".opus": ("opus", "libopus", "flt", 48000),
    ".m4a": ("ipod", "aac", "fltp", 44100),
    ".webm": ("webm", "libopus", "flt", 48000),
    ".au": ("au", "pcm_s16be", "s16", 22050),
    ".aiff": ("aiff", "pcm_s16be", "s16", 22050),
}


def tone(seconds: float, rate: int, frequency: float = 440.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def chord(seconds: float, rate: int, root: float = 220.0) -> np.ndarray:
    """A major triad with a slow tremolo: a musical, non-stationary test signal."""
    t = np.arange(round(seconds * rate)) / rate
    signal = sum(np.sin(2 * np.pi * root * r * t) for r in (1.0, 1.26, 1.5))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)
    return (0.2 * envelope * signal).astype(np.float32)


def noise(seconds: float, rate: int, seed: int = 0, amplitude: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal(round(seconds * rate))).clip(-1, 1).astype(np.float32)


def synth_song(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Kick drum on the beat, bass line and chords: a crude but song-like signal."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros(n, dtype=np.float64)
    beat = 0.5
    for start in np.arange(0, seconds, beat):
        i = int(start * rate)
        length = min(n - i, int(0.15 * rate))
        tt = np.arange(length) / rate
        out[i : i + length] += 0.6 * np.sin(2 * np.pi * 60 * tt) * np.exp(-tt * 25)
        if rng.random() < 0.5:
            out[i : i + length] += 0.15 * rng.standard_normal(length) * np.exp(-tt * 40)
    roots = [110.0, 146.8, 98.0, 130.8]
    for bar, start in enumerate(np.arange(0, seconds, 2.0)):
        i, j = int(start * rate), min(n, int((start + 2.0) * rate))
        root = roots[bar % len(roots)]
        out[i:j] += 0.25 * np.sign(np.sin(2 * np.pi * root / 2 * t[i:j])) * 0.5
        out[i:j] += 0.12 * sum(np.sin(2 * np.pi * root * 2 * r * t[i:j]) for r in (1, 1.26, 1.5))
    return (0.8 * out / max(1e-9, np.abs(out).max())).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray, rate: int | None = None,
                channels: int = 1) -> Path:
    """Encode mono ``samples`` (duplicated to ``channels``) in the format of ``path``'s suffix."""
    container_format, codec, sample_format, default_rate = FORMATS[path.suffix]
    rate = rate or default_rate
    layout = "stereo" if channels == 2 else "mono"
    planar = np.stack([samples] * channels)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if sample_format == "flt":
            data = planar.T.reshape(1, -1).astype(np.float32)
        elif sample_format == "fltp":
            data = planar.astype(np.float32)
        elif sample_format == "s16":
            data = (planar.T.reshape(1, -1) * 32767).astype(np.int16)
        else:  # s16p
            data = (planar * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(data, format=sample_format, layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def chords_and_noise(root: Path, clips: int, seconds: float, rate: int = 22050,
                     suffix: str = ".flac", spread: int | None = None) -> Path:
    """Two 'genres' a CNN separates easily, as GENRE/ folders: ``clips`` chords (roots spread
    over ``spread`` steps from 110 Hz) and as many noises."""
    for genre in ("chords", "noise"):
        (root / genre).mkdir(parents=True, exist_ok=True)
    for i in range(clips):
        write_audio(root / "chords" / f"c{i}{suffix}",
                    chord(seconds, rate, root=110 * (1 + i / (spread or clips))), rate)
        write_audio(root / "noise" / f"n{i}{suffix}", noise(seconds, rate, seed=i), rate)
    return root
