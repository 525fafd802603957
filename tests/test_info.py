"""What a user cannot see: ``genre-tag info`` tells the backend, device and models a run
uses (as a run finds them), and a run that tags on the CPU only because torch is missing,
while a GPU driver is present, says once how to use the GPU."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from audio_fixtures import chord, synth_song, write_audio
from click.testing import CliRunner

from tagger.backends import installed
from tagger.cli import main
from tagger.devices import gpu_driver, unused_gpu_hint
from tagger.inference import EmotionTagger, Tagger
from tagger.tasks import DEFAULT_EMOTION_MODEL, DEFAULT_GENRE_MODEL

ROOT = Path(__file__).resolve().parents[1]
# A genre-tag process in which any import of torch fails and whose GPU driver file is its
# first argument (a Linux driver's, as tagger.devices looks for).
WITHOUT_TORCH = ("import sys; sys.modules['torch'] = None; import tagger.devices; "
                 "tagger.devices.GPU_DRIVER_PATHS = (sys.argv.pop(1),); "
                 "from tagger.cli import main; main()")
INFO_KEYS = ["genre-tag", "python", "platform", "cpus", "genre model", "emotion model",
             "backend", "device", "torch", "openvino", "onnxruntime", "gpu driver",
             "results cache", "download cache", "undo store", "graphs"]

linux_only = pytest.mark.skipif(platform.system() != "Linux",
                                reason="GPU driver files are looked for on Linux")
needs_openvino = pytest.mark.skipif(not installed("openvino"),
                                    reason="openvino is not installed")


def hint_line(driver: Path) -> str:
    return (f"genre-tag: a GPU driver is present ({driver}), but this install has no torch, "
            "so tagging runs on the CPU; for the GPU: pip install 'genre-tag[torch]' "
            "(GENRE_TAG_NO_GPU_HINT=1 silences this)")


def run_without_torch(driver: Path, *args: str, **environment: str
                      ) -> subprocess.CompletedProcess:
    changed = {name: value for name, value in os.environ.items()
               if name != "GENRE_TAG_NO_GPU_HINT"}
    changed.update(environment, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(driver), *args],
                          env=changed, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("two songs")
    write_audio(folder / "one.flac", synth_song(3.0, 44100, seed=1), 44100)
    write_audio(folder / "two.wav", chord(3.0, 44100), 44100)
    return folder


@pytest.fixture
def driver(tmp_path: Path) -> Path:
    """A stand-in for NVIDIA's /proc/driver/nvidia/version."""
    version = tmp_path / "nvidia" / "version"
    version.parent.mkdir()
    version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14\n")
    return version


def test_info_tells_every_key() -> None:
    result = CliRunner().invoke(main, ["info"])
    assert result.exit_code == 0, result.output
    keys = [line.split(": ", 1)[0] for line in result.stdout.splitlines()]
    assert keys == INFO_KEYS
    assert f"genre model: {DEFAULT_GENRE_MODEL} (" in result.stdout
    assert f"emotion model: {DEFAULT_EMOTION_MODEL} (" in result.stdout


def test_info_json_tells_what_a_run_uses() -> None:
    """The backend and device info names are those loading the default models gives."""
    result = CliRunner().invoke(main, ["info", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["genre_model"]["name"] == DEFAULT_GENRE_MODEL
    assert facts["emotion_model"]["name"] == DEFAULT_EMOTION_MODEL
    genre = Tagger.load()
    assert (facts["backend"], facts["device"]) == (genre.backend, genre.device)
    assert facts["genre_model"]["sha256"] == genre.checksum
    assert facts["emotion_model"]["sha256"] == EmotionTagger.load().checksum
    if genre.engine is not None and genre.backend == "openvino":
        assert genre.engine.name == f"openvino-{facts['precision']}"
    assert facts["torch"] == {"installed": True, "version": torch.__version__,
                              "cuda_build": torch.version.cuda,
                              "cuda_available": torch.cuda.is_available(),
                              "mps_available": facts["torch"]["mps_available"]}
    assert facts["gpu_driver"] == gpu_driver()
    assert set(facts["folders"]) == {"results_cache", "download_cache", "undo_store", "graphs"}
    text = CliRunner().invoke(main, ["info"]).stdout
    assert f"results cache: {facts['folders']['results_cache']}" in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_info_names_the_cuda_gpu_a_run_uses() -> None:
    facts = json.loads(CliRunner().invoke(main, ["info", "--json"]).stdout)
    assert (facts["device"], facts["backend"]) == ("cuda", "torch")
    assert facts["gpu"] == torch.cuda.get_device_name(0)
    assert facts["torch"]["cuda_available"] is True


def test_version_points_to_info() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert "genre-tag info" in result.output.splitlines()[1]


@linux_only
@needs_openvino
def test_info_without_torch_names_the_driver_and_the_install(driver: Path) -> None:
    finished = run_without_torch(driver, "info")
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert f"gpu driver: {driver}" in lines
    assert "torch: not installed (for a GPU: pip install 'genre-tag[torch]')" in lines
    assert "device: cpu" in lines and "backend: openvino" in " ".join(lines)
    assert finished.stderr == ""


def test_info_says_why_no_backend_can_run() -> None:
    code = ("import sys; sys.modules['torch'] = sys.modules['openvino'] = "
            "sys.modules['onnxruntime'] = None; from tagger.cli import main; main()")
    finished = subprocess.run([sys.executable, "-c", code, "info", "--json"],
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                              text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    facts = json.loads(finished.stdout)
    assert (facts["backend"], facts["device"], facts["openvino"]) == (None, "cpu", None)
    assert facts["problem"] == ("neither OpenVINO nor ONNX Runtime is installed, so it runs in "
                                "torch, which is not installed (pip install 'genre-tag[torch]')")


@linux_only
@needs_openvino
@pytest.mark.parametrize(("command", "options"), [([], ["--jobs", "2"]), (["emotion"], [])])
def test_the_hint_is_said_once_per_run(command: list[str], options: list[str], driver: Path,
                                       two_songs: Path, tmp_path: Path) -> None:
    """Once for two songs, with worker processes too, and nothing else on stderr."""
    records = tmp_path / "songs.jsonl"
    finished = run_without_torch(driver, *command, str(two_songs), "--quiet", "--json",
                                 str(records), *options)
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr.splitlines() == [hint_line(driver)]
    assert len(records.read_text().splitlines()) == 2


@linux_only
@needs_openvino
def test_the_hint_is_said_once_by_a_local_batch(driver: Path, two_songs: Path,
                                               tmp_path: Path) -> None:
    finished = run_without_torch(driver, "batch", str(two_songs), "--out", str(tmp_path / "out"))
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr.splitlines().count(hint_line(driver)) == 1


@linux_only
@needs_openvino
@pytest.mark.parametrize(("args", "environment"), [
    (["--device", "cpu"], {}),
    ([], {"GENRE_TAG_NO_GPU_HINT": "1"}),
    (["--restore-tags", "--dry-run"], {}),
])
def test_the_hint_is_not_said_when_asked_otherwise(args: list[str], environment: dict[str, str],
                                                   driver: Path, two_songs: Path) -> None:
    finished = run_without_torch(driver, str(two_songs), "--quiet", *args, **environment)
    assert finished.returncode == 0, finished.stderr
    assert "GPU driver" not in finished.stderr


@linux_only
@needs_openvino
def test_the_hint_is_not_said_without_a_driver(tmp_path: Path, two_songs: Path) -> None:
    finished = run_without_torch(tmp_path / "no driver", str(two_songs), "--quiet")
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""


@linux_only
def test_the_hint_is_not_said_where_torch_is_installed(driver: Path, two_songs: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tagger.devices.GPU_DRIVER_PATHS", (str(driver),))
    monkeypatch.delenv("GENRE_TAG_NO_GPU_HINT", raising=False)
    assert gpu_driver() == str(driver)
    result = CliRunner().invoke(main, [str(two_songs), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert unused_gpu_hint("auto") is None
    monkeypatch.setattr("tagger.devices.torch_installed", lambda: False)
    assert unused_gpu_hint("auto") == hint_line(driver).removeprefix("genre-tag: ")
