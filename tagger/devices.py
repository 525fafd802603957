"""Choosing where the model runs (CUDA, then Apple MPS, then the CPU) and on how many CPU
threads. torch is an optional dependency (``genre-tag[torch]``: GPUs, training,
``--backend torch`` and models without an exported graph), and it is asked only when a GPU
may be there: tagging on the CPU with the bundled models needs no torch at all."""

from __future__ import annotations

import os
import platform
import shutil
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from tagger.errors import TaggerError

if TYPE_CHECKING:
    import torch

# What a Linux machine has when a GPU torch can use may be there: NVIDIA's driver, AMD's
# ROCm driver, or WSL's GPU bridge.
GPU_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")
# Elsewhere (Windows), the programs a GPU driver puts on the PATH: looked for, never run.
GPU_DRIVER_PROGRAMS = ("nvidia-smi",)
# What Apple silicon has instead of a driver to look for.
APPLE_GPU = "Apple silicon: MPS"

# How to install torch.
TORCH_HINT = "pip install 'genre-tag[torch]'"
# Set (to anything but 0) to silence ``unused_gpu_hint``'s line.
NO_GPU_HINT_VARIABLE = "GENRE_TAG_NO_GPU_HINT"


def torch_installed() -> bool:
    return find_spec("torch") is not None


def require_torch(what: str) -> None:
    """Raise a TaggerError when torch, which ``what`` needs, is not installed."""
    if not torch_installed():
        raise TaggerError(f"{what} needs torch, which is not installed", hint=TORCH_HINT)


def gpu_driver() -> str | None:
    """What shows a GPU driver torch could use, found without torch and without running
    anything: a driver's file (Linux), Apple silicon (macOS), a driver's program on the
    PATH (elsewhere); None when nothing does."""
    system = platform.system()
    if system == "Darwin":
        return APPLE_GPU if platform.machine() == "arm64" else None
    if system == "Linux":
        return next((path for path in GPU_DRIVER_PATHS if Path(path).exists()), None)
    return next(filter(None, map(shutil.which, GPU_DRIVER_PROGRAMS)), None)


def gpu_may_exist() -> bool:
    """False when this machine certainly has no GPU torch could use (Linux without a GPU
    driver, an Intel Mac); True otherwise, and torch decides."""
    if platform.system() in ("Linux", "Darwin"):
        return gpu_driver() is not None
    return True


def unused_gpu_hint(requested: str) -> str | None:
    """The line telling a user that tagging on device ``requested`` (auto) runs on the CPU
    only because torch is not installed, while a GPU driver is there; None when that is not
    so, or when ``GENRE_TAG_NO_GPU_HINT`` is set."""
    if (requested.lower() != "auto" or torch_installed()
            or os.environ.get(NO_GPU_HINT_VARIABLE, "") not in ("", "0")):
        return None
    driver = gpu_driver()
    if driver is None:
        return None
    return (f"a GPU driver is present ({driver}), but this install has no torch, so tagging "
            f"runs on the CPU; for the GPU: {TORCH_HINT} ({NO_GPU_HINT_VARIABLE}=1 silences "
            "this)")


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
