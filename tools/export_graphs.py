"""Export the bundled musicnn models' OpenVINO graphs into ``weights/graphs``, so that the
installed package tags with them without torch (``tagger.backends.engines``).

Run after any change to a bundled model's weights (the graphs are named by the weights'
sha256; ``tests/test_shipped_graphs.py`` fails until they are exported again)::

    python tools/export_graphs.py

Graphs of weights that are no longer bundled are removed.
"""

from __future__ import annotations

from pathlib import Path

from tagger.backends import graph_key, has_run_graph, save_openvino_graph
from tagger.cards import read_card, sha256_of
from tagger.checkpoints import load_checkpoint
from tagger.models import prepare_for_inference

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
# The tasks genre-tag tags with; "tags" models only start trainings.
TAGGING_TASKS = ("genre", "emotion")


def main() -> None:
    target = WEIGHTS / "graphs"
    kept: set[str] = set()
    for weights in sorted(WEIGHTS.glob("*.safetensors")):
        card, path = read_card(weights)
        if card.task not in TAGGING_TASKS or card.front_end is None or not has_run_graph(card):
            continue
        spec = card.front_end
        key = graph_key(sha256_of(path), spec.context_segments, spec.n_frames, spec.n_mels)
        graph = target / f"{key}.xml"
        kept.update({graph.name, graph.with_suffix(".bin").name})
        if graph.exists() and graph.with_suffix(".bin").exists():
            print(f"{card.name}: {graph.name} is up to date")
            continue
        model = prepare_for_inference(load_checkpoint(path).model)
        save_openvino_graph(model, spec.context_segments, spec.n_frames, spec.n_mels, graph)
        print(f"{card.name}: wrote {graph.name}")
    for stale in sorted(target.glob("*")):
        if stale.name not in kept:
            stale.unlink()
            print(f"removed {stale.name}")


if __name__ == "__main__":
    main()
