"""The exported graph of the musicnn models and the backends that run it: the same outputs
as torch's, chosen by --backend or automatically, built once and cached by the weights'
checksum. Tests of a backend skip when its package is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_fixtures import synth_song, write_audio
from click.testing import CliRunner
from conftest import SMALL_MUSICNN
from test_musicnn import _with_random_norms
from test_without_torch import WITHOUT_TORCH

from tagger.backends import (
    build_engine,
    choose_backend,
    graphs_folder,
    has_run_graph,
    installed,
    shipped_graphs_folder,
)
from tagger.backends import engines as engines_module
from tagger.backends.graph import RunGraph
from tagger.cards import bundled_weights_path, read_card, sha256_of
from tagger.checkpoints import load_checkpoint, save_checkpoint
from tagger.cli import main
from tagger.errors import TaggerError
from tagger.features import stream_runs
from tagger.inference import EmotionTagger, Tagger
from tagger.models import JointBackbones, MusiCNN, prepare_for_inference

EXPORTED = [pytest.param(name, marks=pytest.mark.skipif(not installed(name),
                                                        reason=f"{name} is not installed"))
            for name in ("openvino", "onnx")]


def with_dead_filters(model: MusiCNN) -> MusiCNN:
    """Kill the first two filters of every front-end block, as training killed most of
    musicnn-msd's: zero weights, a bias of either sign."""
    for block in model.frontend:
        block.conv.weight.data[:2] = 0.0
        block.conv.bias.data[:2] = torch.tensor([0.5, -0.5])
    return model


def small_model(context: int, joint: bool, head_pooled: bool = False) -> MusiCNN | JointBackbones:
    torch.manual_seed(0)
    members = [with_dead_filters(_with_random_norms(MusiCNN(
        4, (63 * (2 * context + 1), 96), head_pooled=head_pooled, **SMALL_MUSICNN)))
        for _ in range(2 if joint else 1)]
    model = JointBackbones(4, members) if joint else members[0]
    return prepare_for_inference(model)


@pytest.mark.parametrize(("context", "joint", "head_pooled"),
                         [(0, False, False), (1, True, False), (2, False, False),
                          (1, False, True)])
def test_the_graph_gives_forward_runs_outputs(context: int, joint: bool,
                                              head_pooled: bool) -> None:
    """Every segment of a run, windows clipped at both ends, as ``forward_run`` gives it,
    though the graph leaves the dead filters out."""
    model = small_model(context, joint, head_pooled)
    run = torch.rand(9, 63, 96) * 4
    with torch.inference_mode():
        expected = model.forward_run(run, 0, 9, context)
        middle = model.forward_run(run, 3, 4, context)
        graph = RunGraph(model, context)
        outputs = graph(run)
    assert [block.conv.out_channels for block in graph.members[0].frontend] == [6, 6, 2, 2, 2]
    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(outputs[3:7], middle, atol=1e-5, rtol=1e-5)


def test_the_bundled_models_graph_computes_a_fraction_of_the_filters() -> None:
    """musicnn-msd's dead filters (zero to 1e-6) are left out, and the outputs stay."""
    model = Tagger.load(device="cpu", backend="torch").model
    graph = RunGraph(model, 1)
    msd, mtt = ([block.conv.out_channels for block in member.frontend]
                for member in graph.members)
    assert sum(msd) < 0.15 * (2 * 204 + 3 * 51)
    assert sum(mtt) < 0.7 * (2 * 204 + 3 * 51)
    run = torch.rand(12, 63, 96) * 4
    with torch.inference_mode():
        torch.testing.assert_close(graph(run), model.forward_run(run, 0, 12, 1),
                                   atol=1e-4, rtol=1e-4)


def test_only_musicnn_models_have_a_graph(monkeypatch) -> None:
    other = Tagger.load(bundled_weights_path("genre-gtzan10"), device="cpu", backend="torch")
    with pytest.raises(ValueError, match="no exported graph"):
        RunGraph(other.model, 0)
    assert not has_run_graph(other.card)
    assert has_run_graph(read_card(bundled_weights_path("genre-musicnn11"))[0])
    assert has_run_graph(read_card(bundled_weights_path("musicnn-msd"))[0])
    monkeypatch.setattr(engines_module, "installed", lambda name: True)
    assert choose_backend("auto", other.card, "cpu") == "torch"
    with pytest.raises(TaggerError, match="runs musicnn models only, not genre-cnn"):
        choose_backend("onnx", other.card, "cpu")
    with pytest.raises(TaggerError, match="unknown backend 'tensorflow'"):
        choose_backend("tensorflow", other.card, "cpu")


def test_an_exported_graph_reads_musicnns_margin() -> None:
    assert engines_module.MUSICNN_RECEPTIVE_FRAMES == MusiCNN.RECEPTIVE_FRAMES
    for context in (0, 1, 2):
        assert engines_module.run_graph_margin(context, 63) == small_model(
            context, True).run_margin(context, 63)


def test_auto_prefers_an_installed_backend_on_the_cpu_only(monkeypatch) -> None:
    card, _ = read_card(bundled_weights_path("genre-musicnn11"))
    cpu, gpu = "cpu", "cuda"
    monkeypatch.setattr(engines_module, "installed", lambda name: name in ("torch", "onnx"))
    assert choose_backend("auto", card, cpu) == "onnx"
    assert choose_backend("auto", card, gpu) == "torch"
    with pytest.raises(TaggerError, match="runs on the CPU"):
        choose_backend("onnx", card, gpu)
    with pytest.raises(TaggerError, match="openvino is not installed") as raised:
        choose_backend("openvino", card, cpu)
    assert "pip install openvino" in raised.value.message
    monkeypatch.setattr(engines_module, "installed", lambda name: name == "torch")
    assert choose_backend("auto", card, cpu) == "torch"
    monkeypatch.setattr(engines_module, "installed", lambda name: False)
    with pytest.raises(TaggerError, match="neither OpenVINO nor ONNX Runtime is installed, so "
                                          "it runs in torch, which is not installed"):
        choose_backend("auto", card, cpu)


def test_a_missing_backend_is_one_line_and_a_failing_status(song_mp3: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setattr(engines_module, "installed", lambda name: name == "torch")
    result = CliRunner().invoke(main, [str(song_mp3), "--backend", "openvino", "--device",
                                       "cpu"])
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [
        "genre-tag: error: --backend openvino asked for, but openvino is not installed "
        "(pip install openvino, or use --backend torch)"]


def test_the_bundled_musicnn_models_ship_their_openvino_graphs() -> None:
    """Each bundled model that tags and has a graph ships it, named by its weights'
    sha256 (after a change of weights: python tools/export_graphs.py), and nothing else."""
    expected = set()
    for name in ("genre-musicnn17", "genre-musicnn11", "emotion-musicnn"):
        card, path = read_card(bundled_weights_path(name))
        spec = card.front_end
        key = engines_module.graph_key(sha256_of(path), spec.context_segments,
                                       spec.n_frames, spec.n_mels)
        expected |= {f"{key}.xml", f"{key}.bin"}
    assert {p.name for p in shipped_graphs_folder().iterdir()} == expected


def test_the_cli_offers_every_backend() -> None:
    from tagger.backends import BACKENDS
    from tagger.cli.tag import BACKENDS as OFFERED

    assert OFFERED == BACKENDS


def test_torch_runs_the_model_when_asked(song_mp3: Path) -> None:
    tagger = Tagger.load(device="cpu", backend="torch")
    assert tagger.engine is None and tagger.backend == "torch"
    assert tagger.results_key == tagger.checksum


def per_second(tagger: Tagger, path: Path) -> np.ndarray:
    return tagger.tag_file(path).probabilities


@pytest.mark.parametrize("backend", EXPORTED)
@pytest.mark.slow
def test_the_exported_bundled_model_agrees_with_torch(backend: str, song_mp3: Path) -> None:
    reference = per_second(Tagger.load(device="cpu", backend="torch"), song_mp3)
    tagger = Tagger.load(device="cpu", backend=backend)
    assert tagger.backend == backend
    probabilities = per_second(tagger, song_mp3)
    if tagger.engine.exact:
        np.testing.assert_allclose(probabilities, reference, atol=1e-4)
        assert tagger.results_key == tagger.checksum
    else:  # bfloat16: the acceptance rule is 98 % top-1 agreement on real music
        assert np.abs(probabilities - reference).max() < 0.1
        assert (probabilities.argmax(1) == reference.argmax(1)).mean() >= 0.9
        assert tagger.results_key == f"{tagger.checksum}+{tagger.engine.name}"


@pytest.mark.parametrize("backend", EXPORTED)
@pytest.mark.slow
def test_the_exported_emotion_model_agrees_with_torch(backend: str, song_mp3: Path) -> None:
    reference = EmotionTagger.load(device="cpu", backend="torch").tag_file(song_mp3).values
    values = EmotionTagger.load(device="cpu", backend=backend).tag_file(song_mp3).values
    np.testing.assert_allclose(values, reference, atol=0.03)


@pytest.mark.skipif(not installed("openvino"), reason="openvino is not installed")
@pytest.mark.parametrize("head_pooled", [False, True])
@pytest.mark.slow
def test_openvino_in_float32_is_torchs_to_1e5(head_pooled: bool) -> None:
    model = small_model(1, True, head_pooled)
    engine = build_engine("openvino", lambda: model, 1, 63, 96, "fe"[head_pooled] * 64,
                          threads=1, precision="f32")
    assert engine.exact and engine.name == "openvino-f32"
    for segments in (20, 5):  # runs of any length, not only the traced one's
        run = torch.rand(segments, 63, 96) * 4
        with torch.inference_mode():
            expected = model.forward_run(run, 0, segments, 1).numpy()
        np.testing.assert_allclose(engine(run.numpy()), expected, atol=1e-5)


@pytest.mark.parametrize("backend", EXPORTED)
@pytest.mark.slow
def test_a_graph_is_built_once_per_checksum_and_streams_like_torch(backend: str) -> None:
    model = small_model(1, False)
    engine = build_engine(backend, lambda: model, 1, 63, 96, "a" * 64, threads=1, precision="f32")
    built = sorted(graphs_folder().glob("a" * 64 + "*"))
    assert built and not [p for p in graphs_folder().iterdir() if p.name.startswith(".")]
    stamps = [p.stat().st_mtime_ns for p in built]
    build_engine(backend, lambda: model, 1, 63, 96, "a" * 64, threads=1, precision="f32")
    assert [p.stat().st_mtime_ns for p in built] == stamps
    build_engine(backend, lambda: model, 1, 63, 96, "b" * 64, threads=1, precision="f32")
    assert sorted(graphs_folder().glob("b" * 64 + "*"))

    melgrams = torch.rand(30, 63, 96) * 4
    with torch.inference_mode():
        expected = model.forward_run(melgrams, 0, 30, 1).numpy()
    margin = model.run_margin(1, 63)
    assert engine.margin == margin
    streamed = np.concatenate([engine(run)[start : start + count] for run, start, count
                               in stream_runs(iter(np.array_split(melgrams.numpy(), 5)), margin)])
    np.testing.assert_allclose(streamed, expected, atol=1e-5)


@pytest.mark.skipif(not installed("openvino"), reason="openvino is not installed")
@pytest.mark.slow
def test_an_interrupted_build_leaves_no_graph(monkeypatch) -> None:
    import openvino

    def fail(*args, **kwargs) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(openvino, "save_model", fail)
    with pytest.raises(KeyboardInterrupt):
        build_engine("openvino", lambda: small_model(0, False), 0, 63, 96, "c" * 64, threads=1)
    assert not [p for p in os.listdir(graphs_folder()) if "c" * 64 in p]


# genre-tag as a plain install runs it (no torch), with a Ctrl-C that comes while OpenVINO
# compiles the model: delivered (a real SIGINT to the process) while OpenVINO reads the
# graph's path, Python code of its own that it runs for us.
CTRL_C_WHILE_COMPILING = f"""
import os, signal, sys
from pathlib import Path
{WITHOUT_TORCH.split("; from")[0]}
from tagger.backends.openvino_runtime import import_openvino

openvino = import_openvino()
compile_model = openvino.Core.compile_model


class PathWithCtrlC(type(Path())):
    def __fspath__(self):
        os.kill(os.getpid(), signal.SIGINT)
        return super().__fspath__()

    __str__ = __fspath__


openvino.Core.compile_model = lambda core, graph, *args: compile_model(
    core, PathWithCtrlC(graph), *args)
from tagger.cli import main
main()
"""


def run_plain(code: str, *args: str, **environment: str) -> subprocess.CompletedProcess:
    """genre-tag ``args`` in a process of its own where ``import torch`` fails, with the
    user's cache folders (no GENRE_TAG_GRAPHS) changed by ``environment``."""
    changed = {name: value for name, value in os.environ.items() if name != "GENRE_TAG_GRAPHS"}
    changed.update(environment, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-c", code, *args], env=changed,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not installed("openvino"), reason="openvino is not installed")
def test_ctrl_c_while_openvino_compiles_is_an_interrupt(song_mp3: Path, tmp_path: Path) -> None:
    """Not an OpenVINO failure that falls back to torch (which a plain install lacks)."""
    finished = run_plain(CTRL_C_WHILE_COMPILING, str(song_mp3), "--no-cache",
                         XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert (finished.returncode, finished.stderr) == (130, "genre-tag: interrupted\n")


# A cache folder nothing can be written in: below a file. (A read-only folder would not
# do: root writes in it.)
UNWRITABLE = "not-a-folder"


@pytest.mark.skipif(not installed("openvino"), reason="openvino is not installed")
@pytest.mark.parametrize(("variable", "jobs"), [("XDG_CACHE_HOME", "1"), ("XDG_CACHE_HOME", "2"),
                                                ("HOME", "1")])
def test_an_unwritable_cache_folder_compiles_without_openvinos_cache(
        variable: str, jobs: str, tmp_path: Path) -> None:
    """One warning line, and the songs are tagged as usual, by OpenVINO, without torch."""
    songs = tmp_path / "songs"
    songs.mkdir()
    for seed in range(2):
        write_audio(songs / f"{seed}.wav", synth_song(3.0, 44100, seed=seed), 44100)
    (tmp_path / UNWRITABLE).write_text("a file")
    records = tmp_path / "songs.jsonl"
    environment = {variable: str(tmp_path / UNWRITABLE / "folder")}
    if variable == "HOME":  # the cache folder comes from HOME
        environment["XDG_CACHE_HOME"] = ""
    finished = run_plain(WITHOUT_TORCH, str(songs), "--jobs", jobs, "--json", str(records),
                         **environment)
    assert finished.returncode == 0, finished.stderr
    lines = finished.stderr.splitlines()
    assert all(line.startswith("genre-tag: warning: ") for line in lines), finished.stderr
    compiled = [line for line in lines if "compiled models" in line]
    assert compiled == [
        f"genre-tag: warning: {tmp_path / UNWRITABLE}/folder/{'.cache/' * (variable == 'HOME')}"
        "genre-tag/graphs/compiled: OpenVINO's cache of compiled models cannot be written "
        "(Not a directory), so the model is compiled afresh on every run (set XDG_CACHE_HOME "
        "or GENRE_TAG_GRAPHS to a writable folder)"]
    assert [json.loads(line)["title"] for line in records.read_text().splitlines()] == ["0", "1"]


@pytest.mark.skipif(not installed("openvino"), reason="openvino is not installed")
def test_openvino_failing_without_torch_is_one_line_with_the_install_hint(
        song_mp3: Path, tmp_path: Path) -> None:
    """Own weights whose cached graph lost its weights file: nothing else can run them
    without torch."""
    bundled = load_checkpoint(bundled_weights_path())
    bundled.card.name = "retrained"
    weights = tmp_path / "retrained.safetensors"
    save_checkpoint(bundled.model, bundled.card, weights)
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    key = engines_module.graph_key(sha256_of(weights), 1, 63, 96)
    shipped = next(shipped_graphs_folder().glob("*.xml"))
    shutil.copy(shipped, graphs / f"{key}.xml")
    (graphs / f"{key}.bin").write_bytes(b"")
    finished = run_plain(WITHOUT_TORCH, str(song_mp3), "--weights", str(weights), "--quiet",
                         "--no-cache", GENRE_TAG_GRAPHS=str(graphs))
    assert finished.returncode == 1
    last = finished.stderr.splitlines()[-1]
    assert last.startswith(f"genre-tag: error: {weights}: cannot be run by openvino: ")
    assert last.endswith("(pip install 'genre-tag[torch]' to run it in torch)")
    assert "Traceback" not in finished.stderr
