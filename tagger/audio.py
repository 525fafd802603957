"""Audio input: streaming decode of any common format to mono at one rate.

PyAV is used because it bundles its own FFmpeg, so decoding works on a fresh
machine with nothing installed by hand (torchaudio >= 2.9 decodes only through
torchcodec, which needs a system FFmpeg). Audio is decoded and resampled
frame by frame, so an hour-long mix never sits in memory at its source rate.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from tagger.errors import AudioError, DamagedAudioWarning, SilentAudioError
from tagger.units import clock

AUDIO_EXTENSIONS = frozenset(
    {
        ".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac",
        ".webm", ".mka", ".au", ".snd", ".aif", ".aiff", ".aifc", ".wma", ".alac",
    }
)

# A sample beyond this magnitude (1e12 times full scale) is damaged: nothing recorded
# is that loud, and its spectrum would overflow float32.
MAX_SAMPLE_MAGNITUDE = 1e12

# A decoded length shorter than this share of the length the container declares
# means the file was cut off.
TRUNCATION_TOLERANCE = 0.9


@dataclass(frozen=True)
class Segment:
    """One analysis window: ``samples`` is always full length (zero-padded)."""

    index: int
    samples: np.ndarray
    valid_samples: int
    # No genre is given for it: below the silence threshold, or damaged.
    silent: bool
    # How many damaged samples (NaN, infinite or impossibly large) were muted to 0.
    damaged_samples: int = 0

    @property
    def partial(self) -> bool:
        return self.valid_samples < len(self.samples)


# What each kind of special file is, for the message that refuses it.
SPECIAL_FILES = (
    (stat.S_ISFIFO, "is a named pipe (FIFO), not an audio file",
     "genre-tag reads files it can seek in: save the stream to a file and tag that"),
    (stat.S_ISSOCK, "is a socket, not an audio file", "give the path of an audio file"),
    (stat.S_ISCHR, "is a character device, not an audio file", "give the path of an audio file"),
    (stat.S_ISBLK, "is a block device (a disk), not an audio file",
     "give the path of an audio file"),
)


def check_audio_path(path: Path) -> None:
    """Raise AudioError unless ``path`` is a non-empty regular file (or a link to one)."""
    if not path.exists():
        if path.is_symlink():
            raise AudioError(f"is a broken link to {os.readlink(path)}", str(path),
                             "check where the link points")
        raise AudioError("no such file", str(path), "check the path")
    if path.is_dir():
        raise AudioError("is a folder, not an audio file", str(path),
                         "give the folder as an input of its own to tag every file in it")
    mode = path.stat().st_mode
    for is_kind, what, hint in SPECIAL_FILES:
        if is_kind(mode):
            raise AudioError(what, str(path), hint)
    if path.stat().st_size == 0:
        raise AudioError("file is empty", str(path), "re-export or re-download it")


def _open(path: Path) -> av.container.InputContainer:
    check_audio_path(path)
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as error:
        raise AudioError(
            "not a readable audio file", str(path), f"FFmpeg says: {error.strerror or error}"
        ) from error


def _declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def decode_blocks(path: Path, sample_rate: int) -> Iterator[np.ndarray]:
    """Yield the file's audio as float32 mono blocks at ``sample_rate``.

    Raises AudioError for missing, empty, non-audio, corrupt or truncated files.
    """
    container = _open(path)
    with container:
        if not container.streams.audio:
            raise AudioError("has no audio stream", str(path), "is it a video or an image?")
        stream = container.streams.audio[0]
        declared = _declared_seconds(container, stream)
        # Blocks of a second, not one per packet: a 3-minute MP3 has 7,000 packets, and
        # handling each in Python cost a quarter of the decoding time.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate,
                                      frame_size=sample_rate)
        decoded = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    block = out.to_ndarray().reshape(-1)
                    decoded += block.size
                    yield block
            for out in resampler.resample(None):
                block = out.to_ndarray().reshape(-1)
                decoded += block.size
                yield block
        except av.error.FFmpegError as error:
            raise AudioError(
                f"corrupt audio after {decoded / sample_rate:.1f} s",
                str(path),
                f"FFmpeg says: {error.strerror or error}",
            ) from error
    if decoded == 0:
        raise AudioError("decodes to no audio at all", str(path), "the file may be corrupt")
    if declared > 2.0 and decoded / sample_rate < TRUNCATION_TOLERANCE * declared:
        raise AudioError(
            f"truncated: only {decoded / sample_rate:.1f} s of {declared:.1f} s decode",
            str(path),
            "the file was cut off; re-download or re-rip it",
        )


def audio_content_sha256(path: Path) -> str:
    """A checksum of the first audio stream's packets, read without decoding: it stays the
    same when the file is renamed, moved or retagged (tags are not audio packets), and
    changes when the audio does."""
    container = _open(path)
    with container:
        if not container.streams.audio:
            raise AudioError("holds no audio stream", str(path), "give an audio file")
        digest = hashlib.sha256()
        try:
            for packet in container.demux(container.streams.audio[0]):
                if packet.size:
                    digest.update(memoryview(packet))
        except av.error.FFmpegError as error:
            raise AudioError("is damaged: its audio cannot be read", str(path),
                             f"FFmpeg says: {error.strerror or error}") from error
    return digest.hexdigest()


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def mute_damaged_samples(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """``samples`` with every damaged one (NaN, infinite, or beyond ±MAX_SAMPLE_MAGNITUDE)
    set to 0, and how many there were; the array itself when there were none."""
    damaged = ~(np.abs(samples) <= MAX_SAMPLE_MAGNITUDE)  # NaN compares False
    count = int(damaged.sum())
    return (np.where(damaged, np.float32(0), samples) if count else samples), count


def remove_dc_offset(samples: np.ndarray, valid: int) -> np.ndarray:
    """A copy of ``samples`` whose first ``valid`` samples have their mean subtracted (the
    zero padding after them stays zero)."""
    centred = samples.copy()
    centred[:valid] -= np.float32(centred[:valid].mean(dtype=np.float64))
    return centred


def seconds_list(indexes: list[int], segment_seconds: float, most: int = 5) -> str:
    """Runs of consecutive segments as time spans: ``00:03-00:04, 01:10-01:15``, the first
    ``most`` of them and how many more."""
    runs: list[list[int]] = []
    for index in indexes:
        if runs and index == runs[-1][1]:
            runs[-1][1] = index + 1
        else:
            runs.append([index, index + 1])
    spans = [f"{clock(a * segment_seconds)}-{clock(b * segment_seconds)}" for a, b in runs]
    more = f" and {len(spans) - most} more" if len(spans) > most else ""
    return ", ".join(spans[:most]) + more


def segment_audio(
    blocks: Iterator[np.ndarray],
    segment_samples: int,
    source: str,
    min_partial_samples: int,
    silence_rms: float,
    sample_rate: int,
) -> Iterator[Segment]:
    """Cut a stream of blocks into consecutive, non-overlapping segments.

    The last partial segment is zero-padded (as the course helper does) when it
    holds at least ``min_partial_samples``; a shorter tail is dropped. Each
    segment's DC offset (the mean of its real samples) is removed: it is no
    sound, yet it would shift every melgram's reference level. A segment whose
    RMS (over its real samples) is then below ``silence_rms`` is flagged
    silent, so a constant offset is silence. Damaged samples (NaN, infinite or
    impossibly large) are muted and their segments flagged silent, so they
    never reach a model; a DamagedAudioWarning names those seconds once the
    stream ends. Raises AudioError when the audio is shorter than one segment
    or nothing but damaged and silent, and SilentAudioError when every segment
    is silent.
    """
    damaged: list[int] = []

    def segment(index: int, samples: np.ndarray, valid: int) -> Segment:
        samples, damaged_samples = mute_damaged_samples(samples)
        if damaged_samples:
            damaged.append(index)
        samples = remove_dc_offset(samples, valid)
        silent = bool(damaged_samples) or rms(samples[:valid]) < silence_rms
        return Segment(index, samples, valid, silent, damaged_samples)

    buffered: list[np.ndarray] = []
    buffered_samples = 0
    pending = np.empty(0, dtype=np.float32)
    index = 0
    audible = 0
    for block in blocks:
        buffered.append(block)
        buffered_samples += block.size
        if buffered_samples < segment_samples:
            continue
        # Join the small decoded blocks once per segment, not once per block.
        pending = np.concatenate(buffered)
        whole = pending.size // segment_samples
        for samples in pending[: whole * segment_samples].reshape(whole, segment_samples):
            done = segment(index, samples, segment_samples)
            audible += not done.silent
            yield done
            index += 1
        pending = pending[whole * segment_samples :]
        buffered, buffered_samples = [pending], pending.size
    pending = np.concatenate(buffered) if buffered else pending
    if index == 0:
        raise AudioError(
            f"audio is shorter than one second ({pending.size} samples at the model's rate)",
            source,
            "genre-tag needs at least one full second",
        )
    if pending.size >= min_partial_samples:
        samples = np.zeros(segment_samples, dtype=np.float32)
        samples[: pending.size] = pending
        done = segment(index, samples, int(pending.size))
        audible += not done.silent
        yield done
    spans = seconds_list(damaged, segment_samples / sample_rate)
    if audible == 0 and damaged:
        raise AudioError(
            f"has no usable audio: every second is silent or damaged (samples that are NaN, "
            f"infinite or impossibly large at {spans})", source, "re-export or re-rip the file",
        )
    if audible == 0:
        raise SilentAudioError(
            "is digital silence (or a constant offset) from start to end: there is no genre "
            "to hear",
            source,
            "check the file plays",
        )
    if damaged:
        warnings.warn(DamagedAudioWarning(
            f"{source}: damaged samples (NaN, infinite or impossibly large) at {spans} were "
            "muted, and those seconds are left out like silence (re-export or re-rip the file "
            "to analyse them)"), stacklevel=2)


def decode_to_array(path: Path, sample_rate: int) -> np.ndarray:
    """Decode a whole file to one float32 mono array (for training data)."""
    blocks = list(decode_blocks(path, sample_rate))
    return np.concatenate(blocks).astype(np.float32, copy=False)


# In the names of the hidden copies that tags are written into (``tagger.library.tagfiles``):
# a copy that a killed run left behind is never taken for a song.
PARTIAL_COPY_MARK = ".genre-tag-partial"


def is_partial_copy(path: Path) -> bool:
    return path.name.startswith(".") and PARTIAL_COPY_MARK in path.name


def find_audio_files(folder: Path) -> list[Path]:
    """All audio files below ``folder``, recursively, in a stable order."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not is_partial_copy(p)
    )
