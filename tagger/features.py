"""The melgram front end: one-second segments to log-mel spectrograms.

The parameters live in a ``FrontEndSpec`` that every checkpoint carries, so a
model is always fed the features it was trained on. The default spec is the
course helper's (REFERENCE.md section 1): 8 kHz, n_fft = hop = 400, centred
STFT with zero padding, 128 Slaney mel bands up to 4 kHz, power 2, and dB
relative to each second's own maximum with an 80 dB floor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import ThreadpoolController

from tagger.audio import Segment, decode_blocks, segment_audio

COMPRESSIONS = ("db", "log10")
PAD_MODES = ("constant", "reflect", "replicate", "circular")
_POSITIVE_COUNTS = ("sample_rate", "segment_samples", "n_fft", "hop_length", "n_mels")
_POSITIVE_NUMBERS = ("f_max", "power", "amin", "top_db")
_NUMBERS = ("f_min", "min_partial_seconds", "silence_dbfs", *_POSITIVE_NUMBERS)


@dataclass(frozen=True)
class FrontEndSpec:
    sample_rate: int = 8000
    segment_samples: int = 8000
    n_fft: int = 400
    hop_length: int = 400
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float = 4000.0
    power: float = 2.0
    amin: float = 1e-10
    top_db: float = 80.0
    mel_scale: str = "slaney"
    mel_norm: str = "slaney"
    pad_mode: str = "constant"
    # A trailing partial second shorter than this is dropped, not zero-padded.
    min_partial_seconds: float = 0.1
    # A second whose RMS is below this counts as silence (no genre is given).
    silence_dbfs: float = -60.0
    # Each prediction also sees this many neighbouring segments on either side, their
    # melgrams joined along time (the first and last segments stand in beyond the ends).
    context_segments: int = 0
    # How mel power becomes the model's input: "db" (decibels relative to each segment's
    # maximum, floored top_db below it: the course's) or "log10" (log10(1 + 10000 * power):
    # musicnn's, on an absolute scale, so loudness shows).
    compression: str = "db"

    def __post_init__(self) -> None:
        """Refuse numbers no front end can use (a card may hold anything): ValueError."""
        for name in _POSITIVE_COUNTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"front end: {name} must be a whole number above 0, not {value!r}")
        for name in _NUMBERS:
            value = getattr(self, name)
            number = not isinstance(value, bool) and isinstance(value, int | float)
            if not number or not math.isfinite(value):
                raise ValueError(f"front end: {name} must be a finite number, not {value!r}")
            if name in _POSITIVE_NUMBERS and value <= 0:
                raise ValueError(f"front end: {name} must be above 0, not {value!r}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"front end: need 0 <= f_min < f_max <= sample_rate / 2, not f_min "
                             f"{self.f_min}, f_max {self.f_max}, sample_rate {self.sample_rate}")
        if not 0 <= self.min_partial_seconds <= self.segment_seconds:
            raise ValueError(f"front end: min_partial_seconds must be between 0 and one segment "
                             f"({self.segment_seconds} s), not {self.min_partial_seconds}")
        context = self.context_segments
        if isinstance(context, bool) or not isinstance(context, int) or context < 0:
            raise ValueError(f"front end: context_segments must be a whole number from 0, "
                             f"not {context!r}")
        choices = {"compression": COMPRESSIONS, "pad_mode": PAD_MODES,
                   "mel_scale": ("slaney",), "mel_norm": ("slaney",)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"front end: {name} must be one of {', '.join(allowed)}, "
                                 f"not {getattr(self, name)!r}")

    @property
    def n_frames(self) -> int:
        return 1 + self.segment_samples // self.hop_length

    @property
    def input_shape(self) -> tuple[int, int]:
        """What the model takes: ``(frames, mels)``, with the context's frames."""
        return (self.n_frames * (2 * self.context_segments + 1), self.n_mels)

    @property
    def segment_seconds(self) -> float:
        return self.segment_samples / self.sample_rate

    @property
    def min_partial_samples(self) -> int:
        return max(1, round(self.min_partial_seconds * self.sample_rate))

    @property
    def silence_rms(self) -> float:
        return float(10 ** (self.silence_dbfs / 20))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def melgram_identity(self) -> dict[str, Any]:
        """The fields that shape each segment's melgram (not how segments are joined)."""
        identity = self.to_dict()
        del identity["context_segments"]
        return identity

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FrontEndSpec:
        if not isinstance(data, dict):
            raise ValueError(f"front end must be an object of named numbers, not {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown front-end fields: {', '.join(sorted(unknown))}")
        return cls(**data)


def file_segments(path: Path, spec: FrontEndSpec, source: str | None = None) -> Iterator[Segment]:
    """Decode ``path`` at the spec's rate and cut it into the spec's segments, streaming.

    ``source`` names the input in error messages (default: the path).
    """
    return segment_audio(
        decode_blocks(Path(path), spec.sample_rate), spec.segment_samples, source or str(path),
        spec.min_partial_samples, spec.silence_rms, spec.sample_rate,
    )


def hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, logarithmic, linear)


def slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3)
    logarithmic = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, logarithmic, linear)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float,
                          f_max: float) -> np.ndarray:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` with Slaney area normalisation:
    librosa.filters.mel's defaults, which the course features were made with."""
    frequencies = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = slaney_mel_to_hz(np.linspace(hz_to_slaney_mel(f_min), hz_to_slaney_mel(f_max),
                                         n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - frequencies[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


# numpy's names for the STFT's padding modes (torch's names, which the cards use).
_NUMPY_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
                    "circular": "wrap"}


@cache
def _thread_pools() -> ThreadpoolController:
    """This process's BLAS and OpenMP libraries, found once (0.2 ms; limiting them then
    takes 7 us)."""
    return ThreadpoolController()


class MelgramFrontEnd:
    """Batches of segments ``(B, segment_samples)`` to melgrams ``(B, frames, n_mels)``
    (float32), in numpy: a centred STFT with a periodic Hann window (torch.stft's and
    librosa's), mel power, then the spec's compression."""

    def __init__(self, spec: FrontEndSpec) -> None:
        self.spec = spec
        self.window = np.hanning(spec.n_fft + 1)[:-1]  # periodic
        self.filterbank = slaney_mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels,
                                                spec.f_min, spec.f_max).T

    def __call__(self, segments: np.ndarray) -> np.ndarray:
        spec = self.spec
        half = spec.n_fft // 2
        padded = np.pad(np.asarray(segments, dtype=np.float64), ((0, 0), (half, half)),
                        mode=_NUMPY_PAD_MODES[spec.pad_mode])
        frames = sliding_window_view(padded, spec.n_fft, axis=1)[:, :: spec.hop_length]
        power = np.abs(np.fft.rfft(frames * self.window, axis=2)) ** spec.power
        # One BLAS thread: the idle threads of a parallel matmul spin for a while, and the
        # model that runs next on the same cores took half as long again.
        with _thread_pools().limit(limits=1, user_api="blas"):
            mel = power @ self.filterbank  # (B, frames, mels)
        if spec.compression == "log10":
            return np.log10(1.0 + 10000.0 * mel).astype(np.float32)
        db = 10.0 * np.log10(np.maximum(mel, spec.amin))
        db -= 10.0 * np.log10(np.maximum(mel.max(axis=(1, 2), keepdims=True), spec.amin))
        floor = db.max(axis=(1, 2), keepdims=True) - spec.top_db
        return np.maximum(db, floor).astype(np.float32)


def clip_with_context(melgrams: np.ndarray, context: int) -> np.ndarray:
    """Join each melgram ``(S, frames, mels)`` with ``context`` neighbours on either side:
    ``(S, (2 * context + 1) * frames, mels)``; the first and last stand in beyond the ends."""
    if context == 0:
        return melgrams
    padded = np.concatenate([np.repeat(melgrams[:1], context, axis=0), melgrams,
                             np.repeat(melgrams[-1:], context, axis=0)])
    windows = sliding_window_view(padded, 2 * context + 1, axis=0)  # (S, frames, mels, width)
    count, frames, mels, width = windows.shape
    return np.ascontiguousarray(windows.transpose(0, 3, 1, 2)).reshape(count, width * frames,
                                                                      mels)


def stream_runs(batches: Iterable[np.ndarray],
                margin: int) -> Iterator[tuple[np.ndarray, int, int]]:
    """Regroup a stream of segment batches ``(S, frames, mels)`` into runs that carry up to
    ``margin`` neighbouring segments on either side of their new ones: yields
    ``(run, start, count)``, where ``run[start : start + count]`` are the stream's next
    ``count`` segments. Only at the stream's ends do neighbours fall short. The last batch
    goes out with everything still pending (one batch is read ahead), so a song of one
    batch is one run, with nothing computed twice."""
    before: np.ndarray | None = None  # up to ``margin`` segments preceding ``pending``
    pending: np.ndarray | None = None
    iterator = iter(batches)
    batch = next(iterator, None)
    while batch is not None:
        following = next(iterator, None)
        pending = batch if pending is None else np.concatenate([pending, batch])
        head = pending[:0] if before is None else before
        ready = len(pending) if following is None else len(pending) - margin
        if ready > 0:
            run = np.concatenate([head, pending])
            yield run, len(head), ready
            end = len(head) + ready
            before, pending = run[max(0, end - margin) : end], pending[ready:]
        batch = following
