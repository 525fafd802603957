"""Where the bundled models' arithmetic runs on the CPU: torch itself, or the model exported
once (from its safetensors, at first use) into OpenVINO or ONNX Runtime.

An exported graph is cached in the user cache folder under the weights' sha256, so it is
built once per model and machine, needs no network, and follows the weights when they
change. OpenVINO runs it in bfloat16 where the CPU has bf16 instructions (AVX512-BF16 or
AMX; per-second top-1 agreement with torch's float32 of 99 % on validation seconds) and in
float32 elsewhere; ONNX Runtime runs it in float32.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import platformdirs
import torch
from torch import nn

from tagger.atomic import atomic_write_bytes
from tagger.backends.graph import RunGraph, musicnn_members
from tagger.errors import TaggerError

BACKENDS = ("auto", "torch", "openvino", "onnx")
# The package each exported backend needs, and the extra that installs it.
PACKAGES = {"openvino": "openvino", "onnx": "onnxruntime"}
# Which backends ``auto`` prefers, best first (torch when none is installed).
PREFERRED = ("openvino", "onnx")


def graphs_folder() -> Path:
    """Where exported graphs are cached: ``GENRE_TAG_GRAPHS`` or the user cache folder."""
    chosen = os.environ.get("GENRE_TAG_GRAPHS")
    return Path(chosen) if chosen else Path(platformdirs.user_cache_dir("genre-tag")) / "graphs"


def installed(backend: str) -> bool:
    """Whether ``backend``'s package can be imported (torch always can)."""
    return backend == "torch" or find_spec(PACKAGES[backend]) is not None


def choose_backend(requested: str, model: nn.Module, device: torch.device) -> str:
    """The backend ``requested`` (auto: the best installed one that can run ``model`` on
    ``device``, else torch); a named backend that cannot is a TaggerError."""
    if requested not in BACKENDS:
        raise TaggerError(f"unknown backend {requested!r}", hint=f"use {', '.join(BACKENDS)}")
    exportable = musicnn_members(model) is not None and device.type == "cpu"
    if requested == "auto":
        return next((b for b in PREFERRED if exportable and installed(b)), "torch")
    if requested == "torch":
        return "torch"
    if not installed(requested):
        raise TaggerError(f"--backend {requested} asked for, but {PACKAGES[requested]} is not "
                          "installed", hint=f"pip install 'genre-tag[{requested}]', or use "
                                            "--backend torch")
    if device.type != "cpu":
        raise TaggerError(f"--backend {requested} runs on the CPU, not on {device.type}",
                          hint="use --device cpu, or --backend torch")
    if not exportable:
        raise TaggerError(f"--backend {requested} runs musicnn models only, not "
                          f"{type(model).__name__}", hint="use --backend torch")
    return requested


@dataclass(frozen=True)
class RunEngine:
    """An exported model: ``run (S, frames, mels)`` float32 to outputs ``(S, outputs)``,
    every segment seen with its context as ``Classifier.forward_run`` sees it. ``exact``:
    float32 throughout, so its outputs are torch's to about 1e-5."""

    name: str
    exact: bool
    infer: Callable[[np.ndarray], np.ndarray]

    def __call__(self, run: np.ndarray) -> np.ndarray:
        return self.infer(np.ascontiguousarray(run, dtype=np.float32))


def _example_run(frames: int, bands: int) -> torch.Tensor:
    """A run of melgram-like values, for tracing."""
    return torch.rand(8, frames, bands) * 4


def _openvino_graph(graph: RunGraph, frames: int, bands: int, key: str) -> Path:
    """The cached OpenVINO IR of ``graph`` (built now when missing)."""
    import openvino

    target = graphs_folder() / f"{key}.xml"
    if target.exists() and target.with_suffix(".bin").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=target.parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = openvino.convert_model(
                graph, example_input=_example_run(frames, bands),
                input=[openvino.PartialShape([-1, frames, bands])])
        openvino.save_model(converted, building / target.name, compress_to_fp16=False)
        # The weights first: the .xml is what says the graph is complete.
        os.replace(building / target.with_suffix(".bin").name, target.with_suffix(".bin"))
        os.replace(building / target.name, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _onnx_graph(graph: RunGraph, frames: int, bands: int, key: str) -> Path:
    """The cached ONNX file of ``graph`` (built now when missing)."""
    target = graphs_folder() / f"{key}.onnx"
    if target.exists():
        return target
    exported = io.BytesIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (_example_run(frames, bands),), exported,
                          input_names=["run"], output_names=["outputs"],
                          dynamic_axes={"run": {0: "segments"}, "outputs": {0: "segments"}},
                          dynamo=False)
    atomic_write_bytes(target, exported.getvalue())
    return target


def bf16_capable() -> bool:
    """Whether OpenVINO's CPU plugin has bfloat16 kernels on this CPU."""
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def build_engine(backend: str, model: nn.Module, context: int, frames: int, bands: int,
                 checksum: str, threads: int | None = None, precision: str = "auto"
                 ) -> RunEngine:
    """``model`` (prepared for inference) exported for ``backend`` (openvino or onnx), its
    graph read from the cache or built there; ``checksum`` is its weights' sha256.
    ``precision`` (OpenVINO only): auto (bf16 where the CPU has it), bf16 or f32."""
    threads = threads or torch.get_num_threads()
    graph = RunGraph(model, context).eval()
    key = f"{checksum}-context{context}-{frames}x{bands}"
    if backend == "openvino":
        import openvino

        if precision == "auto":
            precision = "bf16" if bf16_capable() else "f32"
        core = openvino.Core()
        # OpenVINO keeps the compiled model there too: later runs load it instead.
        core.set_property({"CACHE_DIR": str(graphs_folder() / "compiled")})
        compiled = core.compile_model(
            _openvino_graph(graph, frames, bands, key), "CPU",
            {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads})
        request = compiled.create_infer_request()
        return RunEngine(f"openvino-{precision}", precision == "f32",
                         lambda run: request.infer({0: run})[0].copy())
    if backend == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(_onnx_graph(graph, frames, bands, key)),
                                               options, providers=["CPUExecutionProvider"])
        return RunEngine("onnx-f32", True, lambda run: session.run(None, {"run": run})[0])
    raise ValueError(f"no exported graph for backend {backend!r}")
