"""``genre-tag info``: what tagging runs on here (backend, device, models, found by the
functions a run uses), what is installed, and the folders genre-tag keeps: ``key: value``
lines, or one JSON object."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tagger import __version__
from tagger.cli.common import debug_option, run_reporting_errors

if TYPE_CHECKING:
    from tagger.cards import ModelCard

# How many hex digits of a model's sha256 the lines show.
SHORT_SHA256 = 12


def bundled_card(name: str) -> tuple[ModelCard, Path]:
    """The verified card of the bundled model ``name`` and its weights file."""
    from tagger.cards import bundled_weights_path, read_card

    return read_card(bundled_weights_path(name))


def model_facts(card: ModelCard, path: Path) -> dict[str, Any]:
    """A model's name, architecture, classes and sha256 (what its results are cached
    under)."""
    from tagger.cards import sha256_of

    return {"name": card.name, "architecture": card.architecture, "classes": len(card.classes),
            "sha256": sha256_of(path)}


def run_facts(card: ModelCard) -> dict[str, Any]:
    """The device and backend a run with default options (``--device auto --backend auto``)
    chooses for ``card``'s model: the backend is None, and ``problem`` says why, when none
    can run it."""
    from tagger.backends import choose_backend
    from tagger.devices import device_name
    from tagger.errors import TaggerError

    device = device_name("auto")
    facts: dict[str, Any] = {"device": device}
    if device.startswith("cuda"):
        import torch

        facts["gpu"] = torch.cuda.get_device_name(device)
    try:
        facts["backend"] = choose_backend("auto", card, device)
    except TaggerError as error:
        return {**facts, "backend": None, "problem": error.message}
    if facts["backend"] == "openvino":
        from tagger.backends.openvino_runtime import auto_precision

        facts["precision"] = auto_precision()
    return facts


def torch_facts() -> dict[str, Any]:
    """Whether torch is installed; if so its version, the CUDA version it was built for,
    and whether CUDA and Apple MPS are available to it."""
    from tagger.devices import mps_available, torch_installed

    if not torch_installed():
        return {"installed": False}
    import torch

    return {"installed": True, "version": torch.__version__, "cuda_build": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(), "mps_available": mps_available()}


def package_version(module: str) -> str | None:
    """The version of the installed package ``module`` is imported from (read without
    importing it); None when it is not installed."""
    if find_spec(module) is None:
        return None
    for distribution in metadata.packages_distributions().get(module, [module]):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "unknown version"


def folders() -> dict[str, str]:
    """The folders and files genre-tag keeps between runs."""
    from tagger.backends import graphs_folder
    from tagger.download import default_cache_dir
    from tagger.library.undo import default_undo_path
    from tagger.results_cache import default_results_cache_path

    return {"results_cache": str(default_results_cache_path()),
            "download_cache": str(default_cache_dir()), "undo_store": str(default_undo_path()),
            "graphs": str(graphs_folder())}


def gather() -> dict[str, Any]:
    """Everything ``genre-tag info`` tells, as JSON values."""
    from tagger.devices import gpu_driver, usable_cpus
    from tagger.tasks import DEFAULT_EMOTION_MODEL, DEFAULT_GENRE_MODEL

    genre_card, genre_path = bundled_card(DEFAULT_GENRE_MODEL)
    return {
        "genre_tag": __version__,
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "platform": {"system": platform.platform(), "machine": platform.machine()},
        "cpus": {"usable": usable_cpus(), "total": os.cpu_count()},
        "genre_model": model_facts(genre_card, genre_path),
        "emotion_model": model_facts(*bundled_card(DEFAULT_EMOTION_MODEL)),
        **run_facts(genre_card),
        "torch": torch_facts(),
        "openvino": package_version("openvino"),
        "onnxruntime": package_version("onnxruntime"),
        "gpu_driver": gpu_driver(),
        "folders": folders(),
    }


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def model_line(model: dict[str, Any]) -> str:
    return (f"{model['name']} ({model['architecture']}, {model['classes']} classes, sha256 "
            f"{model['sha256'][:SHORT_SHA256]})")


def torch_line(torch: dict[str, Any]) -> str:
    from tagger.devices import TORCH_HINT

    if not torch["installed"]:
        return f"not installed (for a GPU: {TORCH_HINT})"
    build = f"CUDA {torch['cuda_build']} build" if torch["cuda_build"] else "CPU build"
    return (f"{torch['version']} ({build}; CUDA available: {yes_no(torch['cuda_available'])}, "
            f"MPS available: {yes_no(torch['mps_available'])})")


def info_lines(facts: dict[str, Any]) -> list[str]:
    """``gather``'s facts as ``key: value`` lines."""
    python, system, cpus = facts["python"], facts["platform"], facts["cpus"]
    backend = facts["backend"] or f"none: {facts['problem']}"
    if "precision" in facts:
        backend += f" ({facts['precision']})"
    device = facts["device"] + (f" ({facts['gpu']})" if "gpu" in facts else "")
    places = facts["folders"]
    return [
        f"genre-tag: {facts['genre_tag']}",
        f"python: {python['version']} ({python['implementation']}, {python['executable']})",
        f"platform: {system['system']} ({system['machine']})",
        f"cpus: {cpus['usable']} usable of {cpus['total']}",
        f"genre model: {model_line(facts['genre_model'])}",
        f"emotion model: {model_line(facts['emotion_model'])}",
        f"backend: {backend}",
        f"device: {device}",
        f"torch: {torch_line(facts['torch'])}",
        f"openvino: {facts['openvino'] or 'not installed'}",
        f"onnxruntime: {facts['onnxruntime'] or 'not installed'}",
        f"gpu driver: {facts['gpu_driver'] or 'none found'}",
        f"results cache: {places['results_cache']}",
        f"download cache: {places['download_cache']}",
        f"undo store: {places['undo_store']}",
        f"graphs: {places['graphs']}",
    ]


@click.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
@debug_option
def info_command(as_json: bool, debug: bool) -> None:
    """Show what tagging runs on here (backend, device, models), what is installed, and
    the folders genre-tag keeps.

    Without torch, tagging runs on the CPU; where a GPU driver is present, a tagging run
    says once, on standard error, how to use the GPU (pip install 'genre-tag[torch]');
    GENRE_TAG_NO_GPU_HINT=1 silences that line.
    """

    def show() -> int:
        facts = gather()
        click.echo(json.dumps(facts) if as_json else "\n".join(info_lines(facts)))
        return 0

    run_reporting_errors(debug, show)
