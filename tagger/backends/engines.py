"""Where the bundled models' arithmetic runs on the CPU: torch itself, or the model exported
into OpenVINO or ONNX Runtime.

An exported graph is named by the weights' sha256, so it follows the weights when they
change. The bundled models' OpenVINO graphs ship with the package (``weights/graphs``,
made by ``tools/export_graphs.py``), so tagging with them needs no torch; any other
graph is built once per model and machine (with torch, no network) into the user cache
folder. OpenVINO runs it in bfloat16 where the CPU has bf16 instructions (AVX512-BF16 or
AMX; per-second top-1 agreement with torch's float32 of 99 % on validation seconds) and in
float32 elsewhere; ONNX Runtime runs it in float32.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import numpy as np
import platformdirs

from tagger.atomic import atomic_write_bytes
from tagger.backends.openvino_runtime import auto_precision, compile_graph, import_openvino
from tagger.cards import ModelCard
from tagger.errors import TaggerError

if TYPE_CHECKING:
    import torch
    from torch import nn

BACKENDS = ("auto", "torch", "openvino", "onnx")
# The package each backend needs, and what installs it.
PACKAGES = {"torch": "torch", "openvino": "openvino", "onnx": "onnxruntime"}
INSTALLS = {"torch": "pip install 'genre-tag[torch]'", "openvino": "pip install openvino",
            "onnx": "pip install 'genre-tag[onnx]'"}
# Which backends ``auto`` prefers, best first (torch when none is installed).
PREFERRED = ("openvino", "onnx")


def graphs_folder() -> Path:
    """Where exported graphs are cached: ``GENRE_TAG_GRAPHS`` or the user cache folder."""
    chosen = os.environ.get("GENRE_TAG_GRAPHS")
    return Path(chosen) if chosen else Path(platformdirs.user_cache_dir("genre-tag")) / "graphs"


def shipped_graphs_folder() -> Path:
    """Where the bundled models' OpenVINO graphs ship."""
    return Path(str(resources.files("tagger.weights").joinpath("graphs")))


# Raised whenever ``RunGraph`` computes differently, so that cached graphs are rebuilt.
GRAPH_VERSION = 2


def graph_key(checksum: str, context: int, frames: int, bands: int) -> str:
    """The name of the graph of the weights with sha256 ``checksum`` for runs of
    ``frames`` x ``bands`` melgrams seen with ``context`` neighbours."""
    return f"{checksum}-context{context}-{frames}x{bands}-v{GRAPH_VERSION}"


def has_run_graph(card: ModelCard) -> bool:
    """Whether ``card``'s model can be exported (``RunGraph``): a musicnn, or a joint of
    musicnns."""
    if card.architecture == "musicnn":
        return True
    members = card.hyperparameters.get("members")
    return (card.architecture in ("joint", "emotion-joint") and isinstance(members, list)
            and bool(members)
            and all(isinstance(m, dict) and m.get("architecture") == "musicnn"
                    for m in members))


# How far a musicnn frame's maps reach on either side: ``MusiCNN.RECEPTIVE_FRAMES``, here
# so that a graph runs without torch (a test keeps the two equal).
MUSICNN_RECEPTIVE_FRAMES = 73


def run_graph_margin(context: int, frames: int) -> int:
    """How many neighbouring segments a run of an exported graph needs on either side:
    ``MusiCNN.run_margin``'s."""
    return context + -(-MUSICNN_RECEPTIVE_FRAMES // frames)


def installed(backend: str) -> bool:
    """Whether ``backend``'s package can be imported."""
    return find_spec(PACKAGES[backend]) is not None


def choose_backend(requested: str, card: ModelCard, device: str) -> str:
    """The backend ``requested`` (auto: the best installed one that can run ``card``'s
    model on ``device``, else torch); a named backend that cannot is a TaggerError."""
    if requested not in BACKENDS:
        raise TaggerError(f"unknown backend {requested!r}", hint=f"use {', '.join(BACKENDS)}")
    on_cpu = device.split(":")[0] == "cpu"
    exportable = has_run_graph(card) and on_cpu
    if requested == "auto":
        chosen = next((b for b in PREFERRED if exportable and installed(b)), "torch")
        if chosen == "torch" and not installed("torch"):
            why = (f"{card.name} ({card.architecture}) has no exported graph"
                   if not has_run_graph(card) else "neither OpenVINO nor ONNX Runtime is "
                                                   "installed")
            raise TaggerError(f"{why}, so it runs in torch, which is not installed",
                              hint=INSTALLS["torch"])
        return chosen
    if not installed(requested):
        other = "or use --backend auto" if requested == "torch" else "or use --backend torch"
        raise TaggerError(f"--backend {requested} asked for, but {PACKAGES[requested]} is not "
                          "installed", hint=f"{INSTALLS[requested]}, {other}")
    if requested == "torch":
        return "torch"
    if not on_cpu:
        raise TaggerError(f"--backend {requested} runs on the CPU, not on {device}",
                          hint="use --device cpu, or --backend torch")
    if not exportable:
        raise TaggerError(f"--backend {requested} runs musicnn models only, not "
                          f"{card.architecture}", hint="use --backend torch")
    return requested


@dataclass(frozen=True)
class RunEngine:
    """An exported model: ``run (S, frames, mels)`` float32 to outputs ``(S, outputs)``,
    every segment seen with its context as ``Classifier.forward_run`` sees it, given
    ``margin`` neighbours on either side. ``exact``: float32 throughout, so its outputs are
    torch's to about 1e-5."""

    name: str
    exact: bool
    margin: int
    infer: Callable[[np.ndarray], np.ndarray]

    def __call__(self, run: np.ndarray) -> np.ndarray:
        return self.infer(np.ascontiguousarray(run, dtype=np.float32))


def _example_run(frames: int, bands: int) -> torch.Tensor:
    """A run of melgram-like values, for tracing."""
    import torch

    return torch.rand(8, frames, bands) * 4


def _run_graph(model: nn.Module, context: int) -> nn.Module:
    from tagger.backends.graph import RunGraph

    return RunGraph(model, context).eval()


def save_openvino_graph(model: nn.Module, context: int, frames: int, bands: int,
                        target: Path) -> None:
    """Export ``model`` (prepared for inference) as the OpenVINO IR ``target`` (.xml, with
    its .bin beside it), atomically: a graph that is there is complete."""
    openvino = import_openvino()
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.stem}.", dir=target.parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = openvino.convert_model(
                _run_graph(model, context), example_input=_example_run(frames, bands),
                input=[openvino.PartialShape([-1, frames, bands])])
        openvino.save_model(converted, building / target.name, compress_to_fp16=False)
        # The weights first: the .xml is what says the graph is complete.
        os.replace(building / target.with_suffix(".bin").name, target.with_suffix(".bin"))
        os.replace(building / target.name, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _openvino_graph(load_model: Callable[[], nn.Module], context: int, frames: int,
                    bands: int, key: str) -> Path:
    """The OpenVINO IR named ``key``: the shipped one, else the cached one, else built now
    into the cache from ``load_model()``."""
    for folder in (shipped_graphs_folder(), graphs_folder()):
        found = folder / f"{key}.xml"
        if found.exists() and found.with_suffix(".bin").exists():
            return found
    target = graphs_folder() / f"{key}.xml"
    save_openvino_graph(load_model(), context, frames, bands, target)
    return target


def _onnx_graph(load_model: Callable[[], nn.Module], context: int, frames: int, bands: int,
                key: str) -> Path:
    """The cached ONNX file named ``key`` (built now from ``load_model()`` when missing)."""
    target = graphs_folder() / f"{key}.onnx"
    if target.exists():
        return target
    import torch

    exported = io.BytesIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(_run_graph(load_model(), context), (_example_run(frames, bands),),
                          exported, input_names=["run"], output_names=["outputs"],
                          dynamic_axes={"run": {0: "segments"}, "outputs": {0: "segments"}},
                          dynamo=False)
    atomic_write_bytes(target, exported.getvalue())
    return target


def build_engine(backend: str, load_model: Callable[[], nn.Module], context: int, frames: int,
                 bands: int, checksum: str, threads: int, precision: str = "auto"
                 ) -> RunEngine:
    """The model of the weights with sha256 ``checksum`` exported for ``backend`` (openvino
    or onnx): its graph is found (``_openvino_graph``) or built from ``load_model()`` (the
    model prepared for inference; only then is torch needed). ``precision`` (OpenVINO
    only): auto (bf16 where the CPU has it), bf16 or f32."""
    with interrupts_kept():
        return _build_engine(backend, load_model, context, frames, bands, checksum, threads,
                             precision)


# The signals that stop a run: Ctrl-C, and SIGTERM (``kill``, ``timeout``).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interrupts_kept() -> Iterator[None]:
    """A Ctrl-C (or SIGTERM) stays what its handler raises (KeyboardInterrupt): the
    runtimes turn one that comes while they run Python code for us (reading a path, say)
    into an error of their own, which would read as a model they cannot run."""
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    handled = {number: handler for number, handler in previous.items() if callable(handler)}
    if threading.current_thread() is not threading.main_thread() or not handled:
        yield  # the signals are ignored here, or heard by another thread
        return
    raised: list[BaseException] = []

    def hear(number: int, frame: FrameType | None) -> None:
        try:
            handled[number](number, frame)
        except BaseException as stop:
            raised.append(stop)
            raise

    for number in handled:
        signal.signal(number, hear)
    try:
        yield
    except Exception as error:
        if raised:
            raise raised[0] from error
        raise
    finally:
        for number in handled:
            signal.signal(number, previous[number])


def _build_engine(backend: str, load_model: Callable[[], nn.Module], context: int,
                  frames: int, bands: int, checksum: str, threads: int, precision: str
                  ) -> RunEngine:
    key = graph_key(checksum, context, frames, bands)
    margin = run_graph_margin(context, frames)
    if backend == "openvino":
        if precision == "auto":
            precision = auto_precision()
        # OpenVINO keeps the compiled model beside the graphs: later runs load it instead.
        compiled = compile_graph(
            _openvino_graph(load_model, context, frames, bands, key), graphs_folder() / "compiled",
            {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads,
             "ENABLE_CPU_PINNING": False})
        request = compiled.create_infer_request()
        return RunEngine(f"openvino-{precision}", precision == "f32", margin,
                         lambda run: request.infer({0: run})[0].copy())
    if backend == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        graph = _onnx_graph(load_model, context, frames, bands, key)
        session = onnxruntime.InferenceSession(str(graph), options,
                                               providers=["CPUExecutionProvider"])
        return RunEngine("onnx-f32", True, margin,
                         lambda run: session.run(None, {"run": run})[0])
    raise ValueError(f"no exported graph for backend {backend!r}")
