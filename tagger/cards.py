"""Model cards: what a checkpoint is (task, classes, architecture, front end, training and
figures), read and verified without torch, so tagging with an exported graph needs none.

A checkpoint is ``NAME.safetensors``, whose header metadata carries the model
card and a ``content_sha256`` of everything else in the file, and a
sidecar ``NAME.json``: the same card plus evaluation figures and the sha256 of
the weights file. Every load is verified: against the sidecar's sha256 when it
has one, and against the header's checksum when the file has one; a checkpoint
with neither (an old one whose card is lost) is refused. ``tagger.checkpoints``
loads and saves the weights themselves.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tagger.errors import ModelError
from tagger.features import FrontEndSpec
from tagger.tasks import DEFAULT_GENRE_MODEL

CARD_FORMAT = "genre-tag-card/1"
# The header metadata key of the checksum of the header (without this key) and the tensors.
CONTENT_CHECKSUM_KEY = "content_sha256"
# safetensors headers are small JSON; a larger length prefix means the file is not one.
MAX_HEADER_BYTES = 100_000_000
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


@dataclass
class ModelCard:
    name: str
    task: str
    classes: list[str]
    architecture: str
    hyperparameters: dict[str, Any]
    # How features are computed from audio; None for models trained on
    # precomputed features we cannot reproduce (they cannot tag audio).
    front_end: FrontEndSpec | None
    input_shape: tuple[int, ...]
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    # Genre models: ``temperature`` (logits are divided by it before the softmax) and
    # ``uncertain_below`` (a second whose top calibrated probability is lower has no
    # clear genre). Empty for uncalibrated models.
    calibration: dict[str, float] = field(default_factory=dict)
    # Genre models that give a song several genres: ``thresholds``, each class's own bar
    # for its mean probability over the song's audible seconds (``SongResult.song_genres``),
    # and optionally ``familiarity_below``. Empty for models of one genre per song.
    song_genres: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CARD_FORMAT,
            "name": self.name,
            "task": self.task,
            "classes": list(self.classes),
            "architecture": self.architecture,
            "hyperparameters": self.hyperparameters,
            "front_end": self.front_end.to_dict() if self.front_end else None,
            "input_shape": list(self.input_shape),
            "training": self.training,
            "evaluation": self.evaluation,
            "calibration": self.calibration,
            "song_genres": self.song_genres,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        if not isinstance(data, dict):
            raise ValueError(f"the model card is not a JSON object but {type(data).__name__}")
        if data.get("format") != CARD_FORMAT:
            raise ValueError(f"unsupported card format {data.get('format')!r}")
        return cls(
            name=data["name"],
            task=data["task"],
            classes=list(data["classes"]),
            architecture=data["architecture"],
            hyperparameters=dict(data["hyperparameters"]),
            front_end=FrontEndSpec.from_dict(data["front_end"]) if data["front_end"] else None,
            input_shape=tuple(data["input_shape"]),
            training=dict(data.get("training", {})),
            evaluation=dict(data.get("evaluation", {})),
            calibration=dict(data.get("calibration", {})),
            song_genres=dict(data.get("song_genres") or {}),
        )

    def genre_thresholds(self) -> dict[str, float] | None:
        """Each class's threshold of a song's genres (``song_genres.thresholds``), or None
        when the card has none. Raises ValueError, saying what is wrong, unless they name
        exactly the card's classes, each with a number in (0, 1]."""
        thresholds = self.song_genres.get("thresholds")
        if thresholds is None:
            return None
        if not isinstance(thresholds, dict):
            raise ValueError(f"an object of class: threshold is needed, not {thresholds!r}")
        if missing := [genre for genre in self.classes if genre not in thresholds]:
            raise ValueError(f"no threshold for {', '.join(missing)}")
        if unknown := [genre for genre in thresholds if genre not in self.classes]:
            raise ValueError(f"{', '.join(map(str, unknown))} is not one of its classes")
        for genre in self.classes:
            value = thresholds[genre]
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not 0 < value <= 1):
                raise ValueError(f"{genre} has {value!r}, not a number in (0, 1]")
        return {genre: float(thresholds[genre]) for genre in self.classes}

    def genre_familiarity_below(self) -> float | None:
        """The familiarity (``results.familiarity``) under which a song's music is unlike
        every genre the model knows (``song_genres.familiarity_below``), or None. Raises
        ValueError unless it is a finite number."""
        value = self.song_genres.get("familiarity_below")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise ValueError(f"familiarity_below must be a number, not {value!r}")
        return float(value)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_path_for(weights_path: Path) -> Path:
    return weights_path.with_suffix(".json")


def _read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The JSON header of a safetensors file and where its tensor data starts."""
    with open(path, "rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise ValueError("the file is too short to be safetensors")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, path.stat().st_size - 8):
            raise ValueError("its header length is impossible (not a safetensors file?)")
        header = json.loads(stream.read(length))
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__", {}), dict):
        raise ValueError("its header is not a JSON object with a metadata object")
    return header, 8 + length


def content_digest(header: dict[str, Any], data: bytes | Path, data_start: int = 0) -> str:
    """sha256 of the header (without its own checksum, keys sorted) and the tensor data,
    given as bytes or as the file ``data`` whose tensors start at ``data_start``."""
    metadata = {k: v for k, v in (header.get("__metadata__") or {}).items()
                if k != CONTENT_CHECKSUM_KEY}
    canonical = {**header, "__metadata__": metadata}
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":"))
                            .encode("utf-8"))
    if isinstance(data, bytes):
        digest.update(data)
        return digest.hexdigest()
    with open(data, "rb") as stream:
        stream.seek(data_start)
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundled_weights_path(name: str = DEFAULT_GENRE_MODEL) -> Path:
    return Path(str(resources.files("tagger.weights").joinpath(f"{name}.safetensors")))


def resolve_weights_path(path: Path) -> Path:
    """Accept a .safetensors file, its .json card, a run folder holding model.safetensors, or
    the name of a bundled model (e.g. ``genre-sources11``)."""
    path = Path(path)
    if not path.exists() and path.name == str(path) and bundled_weights_path(path.name).is_file():
        return bundled_weights_path(path.name)
    if path.is_dir():
        path = path / "model.safetensors"
    elif path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    return path


def _sidecar_checksum(card_path: Path, hint: str) -> str | None:
    """The sha256 that the card beside the weights holds, or None without a card or sha256."""
    if not card_path.is_file():
        return None
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"unreadable model card: {error}", str(card_path), hint) from error
    if not isinstance(card, dict):
        raise ModelError(f"the model card is not a JSON object but {type(card).__name__}",
                         str(card_path), hint)
    expected = card.get("sha256")
    if expected is not None and not (isinstance(expected, str)
                                     and SHA256_PATTERN.fullmatch(expected)):
        raise ModelError(f"the model card's sha256 is not a sha256 checksum: {expected!r}",
                         str(card_path), hint)
    return expected


def verify_checkpoint(path: Path, hint: str) -> None:
    """Check ``path`` against the sha256 in its card and the checksum in its header, whichever
    it has; raise ModelError on a mismatch, or when it has neither."""
    expected = _sidecar_checksum(card_path_for(path), hint)
    if expected is not None and sha256_of(path) != expected:
        raise ModelError("weights do not match the checksum in their model card "
                         "(tampered or damaged)", str(path), hint)
    try:
        header, data_start = _read_header(path)
    except (OSError, ValueError) as error:
        raise ModelError(f"not a usable genre-tag checkpoint: {error}", str(path), hint) from error
    stored = (header.get("__metadata__") or {}).get(CONTENT_CHECKSUM_KEY)
    if stored is not None and content_digest(header, path, data_start) != stored:
        raise ModelError("weights do not match the checksum in their own header "
                         "(tampered or damaged)", str(path), hint)
    if expected is None and stored is None:
        raise ModelError(
            f"cannot be verified: no model card with a sha256 beside it "
            f"({card_path_for(path).name}) and no checksum in its header", str(path),
            "put the .json card written with it back beside it")


# What a user is told to do about a checkpoint that cannot be used.
CHECKPOINT_HINT = "use a checkpoint written by 'genre-tag retrain', or reinstall genre-tag"


def read_card(path: Path) -> tuple[ModelCard, Path]:
    """The verified card of the checkpoint at ``path`` (``resolve_weights_path``'s forms)
    and the weights file's path, without loading the weights."""
    path = resolve_weights_path(path)
    if not path.is_file():
        raise ModelError("no model weights here", str(path), CHECKPOINT_HINT)
    verify_checkpoint(path, CHECKPOINT_HINT)
    try:
        header, _ = _read_header(path)
        card = ModelCard.from_dict(json.loads(header["__metadata__"]["card"]))
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise ModelError(f"not a usable genre-tag checkpoint: {error}", str(path),
                         CHECKPOINT_HINT) from error
    return card, path
