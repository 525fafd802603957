"""Inference backends: the bundled musicnn models as one exported graph (``graph``, built
with torch), run by OpenVINO or ONNX Runtime when installed, chosen, shipped and cached
by ``engines`` (which needs no torch when the graph is there)."""

from tagger.backends.engines import (
    BACKENDS,
    RunEngine,
    build_engine,
    choose_backend,
    graph_key,
    graphs_folder,
    has_run_graph,
    installed,
    save_openvino_graph,
    shipped_graphs_folder,
)

__all__ = [
    "BACKENDS",
    "RunEngine",
    "build_engine",
    "choose_backend",
    "graph_key",
    "graphs_folder",
    "has_run_graph",
    "installed",
    "save_openvino_graph",
    "shipped_graphs_folder",
]
