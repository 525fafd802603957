"""Emotion training data: 4Q, Emotify and NTUA-multitask layouts to melgrams and clip targets.

Every layout yields the same thing: ``EmotionClip`` records (the audio or
spectrogram file, the unit of the train/valid split, three targets on a 0-1
scale with NaN where a clip has no label, and the raw labels for reports).
Training and evaluation never branch on the layout.

Label derivation (README of ../shared/data and REFERENCE.md section 2D):

- **4Q** (``labels.csv``: file, artist, quadrant, valence_q, arousal_q,
  valence_words, arousal_words): valence is the mean of the quadrant's
  valence sign (0/1) and the percentile rank of ``valence_words``; energy the
  same with arousal. So every positive-quadrant clip lies above every
  negative one, and the mood words order clips within a quadrant. No
  danceability. Split by artist.
- **Emotify** (``labels.csv``: file, the nine GEMS fractions and/or the
  valence, energy, danceability proxies): the percentile rank of each proxy
  (the proxies are derived from the nine fractions when their columns are
  absent). Split by clip.
- **NTUA multitask** (``train_labels.txt``: ``Id,valence,energy,danceability``
  in [0, 1]): the values as given; an empty cell is a missing target. Each Id
  is read from an audio file ``ID.EXT`` when there is one (the tagger's own
  front end), else from the course's ``ID.fused.full.npy[.gz]`` spectrogram,
  converted approximately to our melgrams (``spectrogram_melgrams``). Split
  by clip.

Percentile ranks keep the order of a dataset's scores (all that Spearman
correlation sees) and put datasets with different raw scales on one 0-1 scale.
"""

from __future__ import annotations

import csv
import glob
import gzip
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tagger.audio import AUDIO_EXTENSIONS
from tagger.emotion import TARGETS
from tagger.errors import DatasetError, TaggerError
from tagger.features import FrontEndSpec

TRAIN, VALID = "train", "valid"
LABELS_CSV = "labels.csv"
NTUA_LABELS = "train_labels.txt"
GEMS = ("amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power",
        "joyful_activation", "tension", "sadness")

# The course's NTUA spectrograms: librosa defaults at 22.05 kHz, hop 512, 128 mel
# bands up to 11.025 kHz (1291 frames for 30 s, as the course reports), in dB.
NTUA_RATE, NTUA_HOP, NTUA_F_MAX, NTUA_MELS = 22050, 512, 11025.0, 128


@dataclass(frozen=True)
class EmotionClip:
    key: str  # unique: "dataset:relative path or id"
    dataset: str
    path: Path  # an audio file, or an NTUA spectrogram (.npy / .npy.gz)
    group: str  # the unit of the split: the artist for 4Q, the clip otherwise
    targets: tuple[float, ...]  # one per TARGETS entry, 0-1, NaN where missing
    labels: dict[str, float] = field(default_factory=dict, compare=False, hash=False)
    split: str = ""


@dataclass
class EmotionSet:
    """Melgrams of many clips, one row per audible second, and one target row per clip."""

    melgrams: np.ndarray  # (N, *spec.input_shape) float32: each second with its context
    clip_ids: np.ndarray  # (N,) int64 index into ``clips``
    clips: list[EmotionClip]

    def __len__(self) -> int:
        return len(self.clip_ids)

    @property
    def targets(self) -> np.ndarray:
        """``(clips, targets)`` float32, NaN where a clip has no label."""
        return np.array([c.targets for c in self.clips], dtype=np.float32).reshape(
            len(self.clips), len(TARGETS))

    @property
    def datasets(self) -> np.ndarray:
        return np.array([c.dataset for c in self.clips])


def _read_rows(path: Path, required: tuple[str, ...], delimiter: str = ",") -> list[dict]:
    if not path.is_file():
        raise DatasetError("label file not found", str(path))
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream, delimiter=delimiter)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in required if c not in columns]
        if missing:
            raise DatasetError(f"lacks the column{'s' * (len(missing) > 1)} "
                               f"{', '.join(missing)}", str(path),
                               f"needs {', '.join(required)}")
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]


def _number(row: dict, column: str, where: Path) -> float:
    """A float from ``row[column]``; an empty or absent cell is NaN (a missing label)."""
    text = row.get(column, "")
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{column} {text!r} is not a number", str(where)) from None


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks scaled to (0, 1): ``(rank - 0.5) / n``; NaN stays NaN."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    present = ~np.isnan(values)
    if present.any():
        out[present] = (average_ranks(values[present]) - 0.5) / present.sum()
    return out


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank (as Spearman's correlation needs)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2
            start = end
    return ranks


def _nanmean(*values: float) -> float:
    present = [v for v in values if not math.isnan(v)]
    return sum(present) / len(present) if present else math.nan


def _clips_or_fail(clips: list[EmotionClip], listed: int, where: Path) -> list[EmotionClip]:
    if not clips:
        raise DatasetError(f"none of the {listed} clips it lists exists", str(where),
                           "put the audio files beside the label file, as listed")
    return clips


def load_4q(root: Path) -> list[EmotionClip]:
    labels = root / LABELS_CSV
    rows = _read_rows(labels, ("file", "artist", "quadrant", "valence_q", "arousal_q",
                               "valence_words", "arousal_words"))
    valence_words = percentile_ranks([_number(r, "valence_words", labels) for r in rows])
    arousal_words = percentile_ranks([_number(r, "arousal_words", labels) for r in rows])
    clips = []
    for row, v_words, a_words in zip(rows, valence_words, arousal_words, strict=True):
        path = root / row["file"]
        if not path.is_file():
            continue
        v_sign, a_sign = _number(row, "valence_q", labels), _number(row, "arousal_q", labels)
        clips.append(EmotionClip(
            key=f"4q:{row['file']}", dataset="4q", path=path,
            group=f"4q-artist:{row['artist'].casefold() or row['file']}",
            targets=(_nanmean(v_sign, v_words), _nanmean(a_sign, a_words), math.nan),
            labels={"valence_q": v_sign, "arousal_q": a_sign,
                    "valence_words": _number(row, "valence_words", labels),
                    "arousal_words": _number(row, "arousal_words", labels)},
        ))
    return _clips_or_fail(clips, len(rows), labels)


def emotify_proxies(fractions: dict[str, float]) -> tuple[float, float, float]:
    """Valence, energy and danceability proxies from the nine GEMS listener fractions."""
    f = fractions
    valence = (f["joyful_activation"] + f["tenderness"] + f["amazement"]
               - f["sadness"] - f["tension"])
    energy = (f["power"] + f["joyful_activation"] + f["tension"] + f["amazement"]
              - f["calmness"] - f["tenderness"])
    return valence, energy, f["joyful_activation"]


def load_emotify(root: Path) -> list[EmotionClip]:
    labels = root / LABELS_CSV
    rows = _read_rows(labels, ("file",))
    columns = set(rows[0]) if rows else set()
    if not set(TARGETS) <= columns and not set(GEMS) <= columns:
        raise DatasetError("lacks the valence, energy, danceability columns and the nine "
                           "emotion columns to derive them from", str(labels),
                           f"needs file and {', '.join(TARGETS)} or {', '.join(GEMS)}")
    raw = []
    for row in rows:
        if set(TARGETS) <= columns:
            raw.append(tuple(_number(row, t, labels) for t in TARGETS))
        else:
            raw.append(emotify_proxies({g: _number(row, g, labels) for g in GEMS}))
    ranked = np.stack([percentile_ranks(np.array(column)) for column in zip(*raw, strict=True)],
                      axis=1) if raw else np.zeros((0, len(TARGETS)))
    clips = []
    for row, values, targets in zip(rows, raw, ranked, strict=True):
        path = root / row["file"]
        if path.is_file():
            clips.append(EmotionClip(
                key=f"emotify:{row['file']}", dataset="emotify", path=path,
                group=f"emotify-clip:{row['file']}", targets=tuple(float(t) for t in targets),
                labels=dict(zip(TARGETS, values, strict=True)),
            ))
    return _clips_or_fail(clips, len(rows), labels)


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


def load_ntua(root: Path) -> list[EmotionClip]:
    labels = root / NTUA_LABELS
    if not labels.is_file():
        raise DatasetError("label file not found", str(labels))
    header = labels.read_text(encoding="utf-8").split("\n", 1)[0]
    delimiter = "\t" if "\t" in header and "," not in header else ","
    rows = _read_rows(labels, ("Id",), delimiter)
    present = [t for t in TARGETS if rows and t in rows[0]]
    if not present:
        raise DatasetError("lacks every target column", str(labels),
                           "needs Id and at least one of valence, energy, danceability")
    clips = []
    for row in rows:
        path = _ntua_file(root, row["Id"])
        if path is None:
            continue
        values = tuple(float(np.clip(_number(row, t, labels), 0, 1)) for t in TARGETS)
        clips.append(EmotionClip(key=f"ntua:{row['Id']}", dataset="ntua", path=path,
                                 group=f"ntua-clip:{row['Id']}", targets=values,
                                 labels=dict(zip(TARGETS, values, strict=True))))
    return _clips_or_fail(clips, len(rows), labels)


LAYOUTS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], list[EmotionClip]]]] = {
    "4q": (lambda root: _has_column(root / LABELS_CSV, "quadrant"), load_4q),
    "emotify": (lambda root: (root / LABELS_CSV).is_file()
                and not _has_column(root / LABELS_CSV, "quadrant"), load_emotify),
    "ntua": (lambda root: (root / NTUA_LABELS).is_file(), load_ntua),
}


def _has_column(path: Path, column: str) -> bool:
    if not path.is_file():
        return False
    with open(path, newline="", encoding="utf-8") as stream:
        header = next(csv.reader(stream), [])
    return column in [c.strip() for c in header]


def detect_layout(root: Path) -> str | None:
    return next((name for name, (detect, _) in LAYOUTS.items() if detect(root)), None)


def discover_emotion_clips(
    root: Path, valid_share: float, seed: int
) -> tuple[list[EmotionClip], list[str]]:
    """Every clip under ``root`` with its split, and the layouts found.

    ``root`` is one layout folder, or a folder whose sub-folders are layouts
    (e.g. ../shared/data: its 4q/ and emotify/ are used, gtzan/ is ignored).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("training data folder not found", str(root), "pass --data DIR")
    roots = [root] if detect_layout(root) else sorted(
        d for d in root.iterdir() if d.is_dir() and detect_layout(d))
    if not roots:
        raise DatasetError(
            "holds no emotion data layout", str(root),
            "expected 4Q or Emotify (labels.csv beside the audio) or NTUA multitask "
            "(train_labels.txt: Id,valence,energy,danceability), or folders of them")
    clips: list[EmotionClip] = []
    layouts = []
    for folder in roots:
        layout = detect_layout(folder)
        assert layout is not None
        layouts.append(layout)
        clips += assign_splits(LAYOUTS[layout][1](folder), valid_share, seed)
    return clips, layouts


def assign_splits(clips: list[EmotionClip], valid_share: float, seed: int) -> list[EmotionClip]:
    """Hold out whole groups (artists or clips), seeded, until ``valid_share`` of the clips.

    No group has clips on both sides, so no second of a held-out clip, and no
    clip of a held-out 4Q artist, is trained on.
    """
    groups: dict[str, list[EmotionClip]] = {}
    for clip in clips:
        groups.setdefault(clip.group, []).append(clip)
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    goal = round(valid_share * len(clips))
    held_out: set[str] = set()
    count = 0
    for name in names:
        if count >= goal or len(held_out) == len(names) - 1:
            break
        held_out.add(name)
        count += len(groups[name])
    return [replace(c, split=VALID if c.group in held_out else TRAIN) for c in clips]


# -- features -------------------------------------------------------------------------------


def mel_centres(n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """Centre frequency of each Slaney mel filter (librosa's ``mel_frequencies``)."""
    from tagger.features import hz_to_slaney_mel, slaney_mel_to_hz

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
    from tagger.features import slaney_mel_filterbank

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


def load_emotion_sets(
    clips: list[EmotionClip],
    spec: FrontEndSpec,
    cache_dir: Path | None,
    on_clip: Callable[[EmotionClip, str | None], None] | None = None,
) -> dict[str, EmotionSet]:
    """Melgrams of every clip (with the spec's context), grouped by split; unreadable clips
    are reported and skipped."""
    from tagger.datasets.audio import clip_melgrams
    from tagger.features import MelgramFrontEnd, clip_with_context

    front_end = MelgramFrontEnd(spec)
    parts: dict[str, list[np.ndarray]] = {}
    kept: dict[str, list[EmotionClip]] = {}
    for clip in clips:
        try:
            if clip.path.name.endswith((".npy", ".npy.gz")):
                melgrams = spectrogram_melgrams(clip.path, spec)
            else:
                melgrams = clip_melgrams(clip.path, spec, front_end, cache_dir)
        except TaggerError as error:
            if on_clip:
                on_clip(clip, error.message)
            continue
        melgrams = clip_with_context(melgrams, spec.context_segments)
        parts.setdefault(clip.split, []).append(melgrams)
        kept.setdefault(clip.split, []).append(clip)
        if on_clip:
            on_clip(clip, None)
    sets = {}
    for split, arrays in parts.items():
        sets[split] = EmotionSet(
            melgrams=np.concatenate(arrays).astype(np.float32, copy=False),
            clip_ids=np.concatenate([np.full(len(m), i) for i, m in enumerate(arrays)]),
            clips=kept[split],
        )
    for split in (TRAIN, VALID):
        if split not in sets:
            raise DatasetError(f"no readable {split} clips",
                               str(clips[0].path.parent) if clips else None,
                               "more clips, or another --valid-share")
    return sets
