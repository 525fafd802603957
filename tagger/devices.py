"""Choosing where the model runs (CUDA, then Apple MPS, then the CPU) and on how many CPU
threads. torch is an optional dependency (``genre-tag[torch]``: GPUs, training,
``--backend torch`` and models without an exported graph), and it is asked only when a GPU
may be there: tagging on the CPU with the bundled models needs no torch at all."""

from __future__ import annotations

import os
import platform
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from tagger.errors import TaggerError

if TYPE_CHECKING:
    import torch

# What a Linux machine has when a GPU torch can use may be there: NVIDIA's driver, AMD's
# ROCm driver, or WSL's GPU bridge.
GPU_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


# How to install torch.
TORCH_HINT = "pip install 'genre-tag[torch]'"


def torch_installed() -> bool:
    return find_spec("torch") is not None


def require_torch(what: str) -> None:
    """Raise a TaggerError when torch, which ``what`` needs, is not installed."""
    if not torch_installed():
        raise TaggerError(f"{what} needs torch, which is not installed", hint=TORCH_HINT)


def gpu_may_exist() -> bool:
    """False when this machine certainly has no GPU torch could use (Linux without a GPU
    driver, an Intel Mac); True otherwise, and torch decides."""
    system = platform.system()
    if system == "Linux":
        return any(Path(path).exists() for path in GPU_DRIVER_PATHS)
    if system == "Darwin":
        return platform.machine() == "arm64"
    return True


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def device_name(requested: str = "auto") -> str:
    """The device ``requested`` names: ``auto`` is CUDA if available, else MPS, else the
    CPU (always the CPU without torch); a named device must exist (TaggerError)."""
    requested = requested.lower()
    if requested == "cpu" or (requested == "auto"
                              and not (gpu_may_exist() and torch_installed())):
        return "cpu"
    require_torch(f"--device {requested}")
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if mps_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise TaggerError("--device cuda asked for, but no CUDA GPU is available",
                          hint="use --device auto or cpu")
    if requested == "mps" and not mps_available():
        raise TaggerError("--device mps asked for, but Apple MPS is not available",
                          hint="use --device auto or cpu")
    try:
        return str(torch.device(requested))
    except RuntimeError as error:
        raise TaggerError(f"unknown device {requested!r}", hint="use auto, cpu, cuda or mps") \
            from error


def select_device(requested: str = "auto") -> torch.device:
    """``device_name`` as a torch device (for training)."""
    require_torch("training")
    import torch

    return torch.device(device_name(requested))


def usable_cpus() -> int:
    """How many CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def default_threads() -> int:
    """How many threads one model uses unless told: ``OMP_NUM_THREADS`` when set (as torch
    reads it), else every usable CPU."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return usable_cpus()
