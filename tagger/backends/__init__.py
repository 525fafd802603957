"""Inference backends: the bundled musicnn models as one exported graph (``graph``), run by
OpenVINO or ONNX Runtime when installed, chosen and cached by ``engines``."""

from tagger.backends.engines import (
    BACKENDS,
    RunEngine,
    build_engine,
    choose_backend,
    graphs_folder,
    installed,
)
from tagger.backends.graph import RunGraph, musicnn_members, windowed_pool

__all__ = [
    "BACKENDS",
    "RunEngine",
    "RunGraph",
    "build_engine",
    "choose_backend",
    "graphs_folder",
    "installed",
    "musicnn_members",
    "windowed_pool",
]
