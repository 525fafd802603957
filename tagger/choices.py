"""Names the CLI offers and the library checks, kept free of heavy imports."""

from __future__ import annotations

LAYOUTS = ("audio", "course", "lse", "ntua", "sources")
OPTIMIZERS = ("sgd", "adam", "adamw", "adagrad", "rmsprop")
SCHEDULERS = ("none", "step", "cosine", "plateau", "onecycle")
SELECTIONS = ("last", "f1", "loss")
SWEEPS = ("optimizers", "activations", "schedulers", "batch-sizes")
