"""The NTUA lab's layouts (REFERENCE 2D): spectrograms of 30-s clips with label files.

Genre (``ntua``): ``DIR/train_labels.txt`` and ``DIR/test_labels.txt`` (a
header line, then ``FILE<TAB>Genre``) name arrays ``DIR/train/ID.fused.full.npy``
of shape (140, T): rows 0-127 mel, 128-139 chroma. The 20 FMA genres are
merged into 10 as the lab did (``GENRE_MAPPING``; genres mapped to None are
dropped). Clips are cropped or zero-padded to the longest training clip (or
``max_frames``). The test labels file may be absent; validation is always a
seeded, per-genre share of the training clips.

Emotion (multitask): ``train_labels.txt`` holds ``Id,valence,energy,danceability``
in [0, 1]: the values as given; an empty cell is a missing target. Each Id is
read from an audio file ``ID.EXT`` when there is one (the tagger's own front
end), else from the course's ``ID.fused.full.npy[.gz]`` spectrogram, converted
approximately to our melgrams (``spectrogram_melgrams``). Split by clip.
"""

from __future__ import annotations

import csv
import glob
import gzip
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tagger.audio import AUDIO_EXTENSIONS
from tagger.datasets.labels import clips_or_fail, number, read_rows
from tagger.datasets.splits import TEST, TRAIN, VALID, Clip, Dataset, Split
from tagger.errors import DatasetError
from tagger.features import FrontEndSpec, hz_to_slaney_mel, slaney_mel_filterbank, slaney_mel_to_hz
from tagger.tasks import TARGETS

GENRE_MAPPING: dict[str, str | None] = {
    "Rock": "Rock", "Psych-Rock": "Rock", "Indie-Rock": None, "Post-Rock": "Rock",
    "Psych-Folk": "Folk", "Folk": "Folk", "Metal": "Metal", "Punk": "Metal",
    "Post-Punk": None, "Trip-Hop": "Trip-Hop", "Pop": "Pop", "Electronic": "Electronic",
    "Hip-Hop": "Hip-Hop", "Classical": "Classical", "Blues": "Blues",
    "Chiptune": "Electronic", "Jazz": "Jazz", "Soundtrack": None, "International": None,
    "Old-Time": None,
}
LABELS_TXT = "train_labels.txt"
# The course's spectrograms: librosa defaults at 22.05 kHz, hop 512, 128 mel bands up
# to 11.025 kHz (1291 frames for 30 s, as the course reports), in dB.
NTUA_RATE, NTUA_HOP, NTUA_F_MAX, NTUA_MELS = 22050, 512, 11025.0, 128
FEATURE_ROWS = {"mel": slice(0, 128), "chroma": slice(128, 140), "fused": slice(0, 140)}


def _read_labels(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream, delimiter="\t"))
    if not rows:
        raise DatasetError("is empty", str(path))
    header = [h.strip().lower() for h in rows[0]]
    if "valence" in header:
        raise DatasetError("holds emotion targets, not genres", str(path),
                           "use genre-tag retrain --task emotion")
    pairs = [(row[0].strip(), row[1].strip()) for row in rows[1:] if len(row) >= 2]
    if not pairs:
        raise DatasetError("lists no FILE<TAB>Genre rows", str(path))
    return pairs


def _array_path(folder: Path, name: str) -> Path:
    name = name.removesuffix(".gz")
    return folder / (name if name.endswith(".npy") else f"{name}.fused.full.npy")


def _fit(array: np.ndarray, frames: int) -> np.ndarray:
    out = np.zeros((frames, array.shape[1]), dtype=np.float32)
    out[: min(frames, len(array))] = array[:frames]
    return out


def load(root: Path, options: dict[str, Any],
         on_clip: Callable[[str, str | None], None] | None = None) -> Dataset:
    """Options: ``features`` (mel, chroma or fused), ``max_frames``, ``valid_share``, ``seed``."""
    rows = FEATURE_ROWS.get(options.get("features") or "mel")
    if rows is None:
        raise DatasetError(f"unknown ntua features {options.get('features')!r}", str(root),
                           "use mel, chroma or fused")
    clips: dict[str, list[tuple[str, np.ndarray, str]]] = {}
    for split, label_file, folder in ((TRAIN, "train_labels.txt", "train"),
                                      (TEST, "test_labels.txt", "test")):
        if not (root / label_file).is_file():
            continue
        for name, genre in _read_labels(root / label_file):
            merged = GENRE_MAPPING.get(genre, genre)
            if merged is None:
                continue
            path = _array_path(root / folder, name)
            if not path.is_file():
                raise DatasetError("is listed but missing", str(path))
            clips.setdefault(split, []).append((str(path), np.load(path)[rows].T, merged))
            if on_clip:
                on_clip(str(path), None)
    if TRAIN not in clips:
        raise DatasetError("has no train_labels.txt", str(root))
    classes = sorted({genre for _, _, genre in clips[TRAIN]})
    frames = options.get("max_frames") or max(len(a) for _, a, _ in clips[TRAIN])
    rng = random.Random(options.get("seed", 0))
    train, valid = [], []
    for genre in classes:
        members = [c for c in clips[TRAIN] if c[2] == genre]
        rng.shuffle(members)
        n_valid = max(1, round(options.get("valid_share", 0.2) * len(members)))
        valid += members[:n_valid]
        train += members[n_valid:]
    groups = {TRAIN: train, VALID: valid, TEST: clips.get(TEST, [])}
    splits = {
        split: Split(
            features=np.stack([_fit(a, frames) for _, a, _ in items]),
            labels=np.array([classes.index(g) if g in classes else -1 for _, _, g in items]),
            clip_ids=np.arange(len(items)),
            clip_names=[name for name, _, _ in items],
        )
        for split, items in groups.items() if items
    }
    if TEST in splits and (splits[TEST].labels < 0).any():
        raise DatasetError("test labels hold genres absent from train", str(root))
    return Dataset("ntua", classes, splits, None,
                   {"split": f"valid: seeded share {options.get('valid_share', 0.2)} of train "
                             f"clips per genre", "frames": frames}, row_unit="clip")


# -- emotion (multitask) ------------------------------------------------------------------


def _ntua_file(root: Path, clip_id: str) -> Path | None:
    """The clip's audio file (preferred: our exact front end), else its course spectrogram."""
    folders = [f for f in (root, root / "train", root / "audio") if f.is_dir()]
    for folder in folders:
        audio = sorted(p for p in folder.glob(f"{glob.escape(clip_id)}.*")
                       if p.suffix.lower() in AUDIO_EXTENSIONS and p.stem == clip_id)
        if audio:
            return audio[0]
    names = [clip_id] if clip_id.endswith((".npy", ".npy.gz")) else [
        f"{clip_id}.fused.full.npy", f"{clip_id}.fused.full.npy.gz", f"{clip_id}.npy"]
    return next((folder / name for folder in folders for name in names
                 if (folder / name).is_file()), None)


def read_emotion_clips(root: Path) -> list[Clip]:
    """The multitask layout's clips that exist, with their targets."""
    labels = root / LABELS_TXT
    if not labels.is_file():
        raise DatasetError("label file not found", str(labels))
    header = labels.read_text(encoding="utf-8").split("\n", 1)[0]
    delimiter = "\t" if "\t" in header and "," not in header else ","
    rows = read_rows(labels, ("Id",), delimiter)
    present = [t for t in TARGETS if rows and t in rows[0]]
    if not present:
        raise DatasetError("lacks every target column", str(labels),
                           "needs Id and at least one of valence, energy, danceability")
    clips = []
    for row in rows:
        path = _ntua_file(root, row["Id"])
        if path is None:
            continue
        values = tuple(float(np.clip(number(row, t, labels), 0, 1)) for t in TARGETS)
        clips.append(Clip(key=f"ntua:{row['Id']}", source="ntua", path=path,
                          group=f"ntua-clip:{row['Id']}", targets=values,
                          notes=dict(zip(TARGETS, values, strict=True))))
    return clips_or_fail(clips, len(rows), labels)


def mel_centres(n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """Centre frequency of each Slaney mel filter (librosa's ``mel_frequencies``)."""
    edges = np.linspace(hz_to_slaney_mel(f_min), hz_to_slaney_mel(f_max), n_mels + 2)
    return slaney_mel_to_hz(edges)[1:-1]


def _interpolate(array: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    positions = np.clip(positions, 0, array.shape[axis] - 1)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, array.shape[axis] - 1)
    weight = positions - low
    shape = [1] * array.ndim
    shape[axis] = -1
    weight = weight.reshape(shape)
    return np.take(array, low, axis=axis) * (1 - weight) + np.take(array, high, axis=axis) * weight


def load_spectrogram(path: Path) -> np.ndarray:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            array = np.load(stream, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DatasetError(f"not a readable .npy spectrogram: {error}", str(path)) from None
    if array.ndim != 2 or array.shape[0] < NTUA_MELS or not np.isfinite(array).all():
        raise DatasetError(f"expected a (140, T) or (128, T) spectrogram, got {array.shape}",
                           str(path))
    return array


def spectrogram_melgrams(path: Path, spec: FrontEndSpec) -> np.ndarray:
    """An NTUA ``(140, T)`` spectrogram (rows 0-127 mel) as our melgrams ``(seconds, 21, 128)``.

    An approximation for users who have only the course's spectrograms, not the
    audio: each of our mel bands is interpolated from the 22.05 kHz bands by
    centre frequency, frames are interpolated to our 50 ms grid, our empty
    low filters are set to the floor, and every second is put in dB relative
    to its own maximum with the 80 dB floor, as our front end does.
    """
    mel = load_spectrogram(path)[:NTUA_MELS].astype(np.float64)
    if mel.min() >= 0:  # power, not dB
        mel = 10 * np.log10(np.maximum(mel, spec.amin))
    source = mel_centres(NTUA_MELS, 0.0, NTUA_F_MAX)
    target = mel_centres(spec.n_mels, spec.f_min, spec.f_max)
    bands = _interpolate(mel, np.interp(target, source, np.arange(NTUA_MELS)), axis=0)
    frame_rate = NTUA_RATE / NTUA_HOP
    n_seconds = int(mel.shape[1] / frame_rate // spec.segment_seconds)
    if n_seconds == 0:
        raise DatasetError("spectrogram is shorter than one second", str(path))
    frame_times = np.arange(spec.n_frames) * spec.hop_length / spec.sample_rate
    times = (np.arange(n_seconds)[:, None] * spec.segment_seconds + frame_times[None, :])
    melgrams = _interpolate(bands, (times * frame_rate).reshape(-1), axis=1)
    melgrams = melgrams.T.reshape(n_seconds, spec.n_frames, spec.n_mels)
    filterbank = slaney_mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels, spec.f_min,
                                       spec.f_max)
    melgrams[:, :, filterbank.sum(axis=1) == 0] = -np.inf
    melgrams -= melgrams.max(axis=(1, 2), keepdims=True)
    return np.maximum(melgrams, -spec.top_db).astype(np.float32)
