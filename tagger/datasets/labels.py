"""Reading label files: CSV rows with required columns, numbers, ranks on a 0-1 scale.

Percentile ranks keep the order of a data set's scores (all that Spearman
correlation sees) and put data sets with different raw scales on one 0-1 scale.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from tagger.datasets.splits import Clip
from tagger.errors import DatasetError

LABELS_CSV = "labels.csv"


def read_rows(path: Path, required: tuple[str, ...], delimiter: str = ",") -> list[dict]:
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


def number(row: dict, column: str, where: Path) -> float:
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


def nanmean(*values: float) -> float:
    present = [v for v in values if not math.isnan(v)]
    return sum(present) / len(present) if present else math.nan


def clips_or_fail(clips: list[Clip], listed: int, where: Path) -> list[Clip]:
    if not clips:
        raise DatasetError(f"none of the {listed} clips it lists exists", str(where),
                           "put the audio files beside the label file, as listed")
    return clips


def csv_columns(path: Path) -> list[str]:
    """The header of a CSV file ([] when it is absent)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        return [c.strip() for c in next(csv.reader(stream), [])]
