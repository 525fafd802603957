"""OpenVINO as genre-tag runs it: imported without its usage telemetry, compiling with its
model cache where the cache folder can be written and without it elsewhere."""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tagger.errors import TaggerWarning

if TYPE_CHECKING:
    import openvino

# The package through which ``import openvino`` sends usage data to Google Analytics and
# writes ``~/intel`` (OpenVINO's ``tools.ovc`` starts it).
TELEMETRY_PACKAGE = "openvino_telemetry"


def import_openvino() -> ModuleType:
    """``openvino``, imported without its telemetry. Where ``openvino_telemetry`` cannot be
    imported, OpenVINO binds a stand-in of its own that does nothing
    (``openvino.tools.ovc.telemetry_stub``); so the package is hidden while openvino loads:
    no socket, no name looked up, nothing written in the home folder. Hidden only then: a
    program that imports openvino_telemetry itself still can, and one that imported
    openvino before keeps what it chose."""
    hide = TELEMETRY_PACKAGE not in sys.modules
    if hide:
        sys.modules[TELEMETRY_PACKAGE] = None  # type: ignore[assignment]  # import fails
    try:
        import openvino
    finally:
        if hide:
            del sys.modules[TELEMETRY_PACKAGE]
    return openvino


def unwritable_reason(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (made if missing), or None when they can:
    tried, since permissions do not tell (root, read-only mounts)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def compile_graph(graph: Path, cache: Path, config: dict[str, Any]) -> openvino.CompiledModel:
    """The OpenVINO IR ``graph`` compiled for the CPU with ``config``. The compiled model is
    kept in ``cache`` and loaded from there by later runs; where ``cache`` cannot be
    written, a warning says so (in the main process only, which compiles the same graph
    before its worker processes) and the graph is compiled without it."""
    core = import_openvino().Core()
    reason = unwritable_reason(cache)
    if reason is None:
        core.set_property({"CACHE_DIR": str(cache)})
    elif multiprocessing.parent_process() is None:  # --jobs workers: their parent said it
        warnings.warn(TaggerWarning(
            f"{cache}: OpenVINO's cache of compiled models cannot be written ({reason}), so "
            "the model is compiled afresh on every run (set XDG_CACHE_HOME or "
            "GENRE_TAG_GRAPHS to a writable folder)"), stacklevel=2)
    return core.compile_model(str(graph), "CPU", config)


def auto_precision() -> str:
    """The precision an OpenVINO graph runs in when none is asked: bf16 where OpenVINO's
    CPU plugin has bfloat16 kernels on this CPU, else f32."""
    capabilities = import_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "bf16" if "BF16" in capabilities else "f32"
