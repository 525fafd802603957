"""Where the model runs: a GPU (CUDA, Apple MPS) when there is one, with the CPU's
outputs; the CPU otherwise, needing neither. GPU tests skip on machines without one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tagger.cli import main
from tagger.devices import device_name, gpu_may_exist, mps_available, select_device
from tagger.errors import TaggerError
from tagger.inference import EmotionTagger, Tagger

GPUS = [pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                      reason="no CUDA GPU")),
        pytest.param("mps", marks=pytest.mark.skipif(not mps_available(),
                                                     reason="no Apple MPS"))]


@pytest.mark.parametrize("gpu", GPUS)
def test_a_gpu_tags_as_the_cpu_does(gpu: str, song_mp3: Path) -> None:
    on_gpu = Tagger.load(device="auto")
    assert on_gpu.device == gpu and on_gpu.backend == "torch"
    on_cpu = Tagger.load(device="cpu", backend="torch")
    np.testing.assert_allclose(on_gpu.tag_file(song_mp3).probabilities,
                               on_cpu.tag_file(song_mp3).probabilities, atol=1e-3)
    emotion_gpu = EmotionTagger.load(device=gpu).tag_file(song_mp3).values
    emotion_cpu = EmotionTagger.load(device="cpu", backend="torch").tag_file(song_mp3).values
    np.testing.assert_allclose(emotion_gpu, emotion_cpu, atol=1e-3)


@pytest.mark.parametrize("gpu", GPUS)
def test_a_gpu_refuses_the_cpu_backends_by_name(gpu: str) -> None:
    with pytest.raises(TaggerError, match="runs on the CPU"):
        Tagger.load(device=gpu, backend="openvino")


def test_without_a_gpu_auto_is_the_cpu(monkeypatch: pytest.MonkeyPatch, song_mp3: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("tagger.devices.mps_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    assert Tagger.load(device="auto").device == "cpu"
    for gpu in ("cuda", "mps"):
        with pytest.raises(TaggerError, match=f"--device {gpu} asked for"):
            select_device(gpu)
    result = CliRunner().invoke(main, [str(song_mp3), "--device", "cuda", "--quiet"])
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [
        "genre-tag: error: --device cuda asked for, but no CUDA GPU is available (use "
        "--device auto or cpu)"]


def test_torch_is_asked_only_where_a_gpu_may_be(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a GPU driver, auto is the CPU without asking torch (which costs seconds to
    import); with one, torch decides."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr("tagger.devices.gpu_may_exist", lambda: False)
    assert device_name("auto") == "cpu"
    monkeypatch.setattr("tagger.devices.gpu_may_exist", lambda: True)
    assert device_name("auto") == "cuda"
    monkeypatch.setattr("platform.system", lambda: "Linux")
    monkeypatch.setattr("tagger.devices.GPU_DRIVER_PATHS", ("/nonexistent/nvidia",))
    assert not gpu_may_exist()
    monkeypatch.setattr("tagger.devices.GPU_DRIVER_PATHS", ("/proc/self",))
    assert gpu_may_exist()
