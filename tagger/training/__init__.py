"""Training, apart from inference: one loop and one run writer for both tasks.

| stage | module |
|---|---|
| settings of a run (``config.json``) | ``options.py`` |
| the training loop | ``loop.py`` |
| each task's half: loss, targets, metrics | ``genre.py``, ``emotion.py`` |
| starting from another model's backbone | ``transfer.py`` |
| data in, run folder out | ``run.py`` (``crossval.py``, ``sweep.py``) |
| report pictures of a genre run | ``reports.py`` |
| measuring and calibrating checkpoints | ``evaluate.py``, ``calibration.py``, ``metrics.py`` |

From Python::

    from tagger.training import GenreOptions, retrain
    result = retrain(GenreOptions(data=Path("gtzan"), out=Path("runs/gtzan")))

Heavy modules (torch) load on first use of ``retrain``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EmotionConfig", "EmotionOptions", "GenreConfig", "GenreOptions", "RunResult",
           "retrain"]


def __getattr__(name: str) -> Any:
    if name == "retrain":
        from tagger.training.run import retrain

        return retrain
    if name in __all__:
        from tagger.training import options

        return getattr(options, name)
    raise AttributeError(f"module 'tagger.training' has no attribute {name!r}")
