"""Choosing where the model runs: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from tagger.errors import TaggerError


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def select_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA if available, else MPS, else CPU; a named device must exist."""
    requested = requested.lower()
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise TaggerError("--device cuda asked for, but no CUDA GPU is available",
                          hint="use --device auto or cpu")
    if requested == "mps" and not mps_available():
        raise TaggerError("--device mps asked for, but Apple MPS is not available",
                          hint="use --device auto or cpu")
    try:
        return torch.device(requested)
    except RuntimeError as error:
        raise TaggerError(f"unknown device {requested!r}", hint="use auto, cpu, cuda or mps") \
            from error
