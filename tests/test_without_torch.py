"""Tagging on the CPU with the bundled models needs no torch: their OpenVINO graphs ship
with the package, and the front end is numpy. A process where importing torch fails tags
a song as the usual one does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tagger.backends import installed
from tagger.cli import main

ROOT = Path(__file__).resolve().parents[1]
# A genre-tag process in which any import of torch fails.
WITHOUT_TORCH = "import sys; sys.modules['torch'] = None; from tagger.cli import main; main()"

pytestmark = pytest.mark.skipif(not installed("openvino"), reason="openvino is not installed")


def run_without_torch(*args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "GENRE_TAG_NO_GPU_HINT": "1"}
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *args], env=environment,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", [[], ["emotion"]])
def test_a_song_is_tagged_without_torch_as_with_it(command: list[str], song_mp3: Path,
                                                   tmp_path: Path) -> None:
    without, usual = tmp_path / "without.json", tmp_path / "usual.json"
    finished = run_without_torch(*command, str(song_mp3), "--json", str(without), "--quiet",
                                 "--no-cache")
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    result = CliRunner().invoke(main, [*command, str(song_mp3), "--json", str(usual), "--quiet",
                                       "--no-cache", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert json.loads(without.read_text()) == json.loads(usual.read_text())


def test_a_bad_file_is_still_one_line_without_torch(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not audio at all" * 100)
    finished = run_without_torch(str(broken), "--quiet")
    assert finished.returncode == 1
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genre-tag: error:") and "broken.mp3" in lines[0]


@pytest.mark.parametrize(("args", "expected"), [
    (["{song}", "--backend", "torch"], "--backend torch asked for, but torch is not installed "
                                       "(pip install 'genre-tag[torch]', or use --backend auto)"),
    (["{song}", "--weights", "genre-sources11"],
     "genre-sources11 (tf-cnn) has no exported graph, so it runs in torch, which is not "
     "installed (pip install 'genre-tag[torch]')"),
    (["{song}", "--device", "cuda"], "--device cuda needs torch, which is not installed "
                                     "(pip install 'genre-tag[torch]')"),
    (["retrain", "--data", "{song}"], "genre-tag retrain needs torch, which is not installed "
                                      "(pip install 'genre-tag[torch]')"),
    (["retrain", "--list-archs"], "genre-tag retrain --list-archs needs torch, which is not "
                                  "installed (pip install 'genre-tag[torch]')"),
    (["evaluate", "--data", "{song}"], "genre-tag evaluate needs torch, which is not "
                                       "installed (pip install 'genre-tag[torch]')"),
])
def test_what_needs_torch_says_how_to_install_it(args: list[str], expected: str,
                                                 song_mp3: Path) -> None:
    finished = run_without_torch(*(arg.format(song=song_mp3) for arg in args))
    assert finished.returncode != 0
    assert finished.stderr.strip().splitlines() == [f"genre-tag: error: {expected}"]


def test_a_checkpoint_of_ones_own_needs_torch_once_to_export_its_graph(
        song_mp3: Path, tmp_path: Path) -> None:
    """Weights without a shipped graph: their graph is built with torch at first use, and
    then tags without torch."""
    from tagger.cards import bundled_weights_path
    from tagger.checkpoints import load_checkpoint, save_checkpoint

    bundled = load_checkpoint(bundled_weights_path())
    bundled.card.name = "retrained"
    weights = tmp_path / "retrained.safetensors"
    save_checkpoint(bundled.model, bundled.card, weights)
    args = [str(song_mp3), "--weights", str(weights), "--quiet", "--no-cache"]

    finished = run_without_torch(*args)
    assert finished.returncode != 0
    assert finished.stderr.strip().splitlines() == [
        "genre-tag: error: exporting retrained's graph (once for these weights) needs torch, "
        "which is not installed (pip install 'genre-tag[torch]')"]
    assert CliRunner().invoke(main, [*args, "--device", "cpu"]).exit_code == 0  # builds it
    without = tmp_path / "without.json"
    finished = run_without_torch(*args, "--json", str(without))
    assert finished.returncode == 0, finished.stderr
    assert json.loads(without.read_text())["model"] == "retrained"
