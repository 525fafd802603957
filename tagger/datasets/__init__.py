"""Training data: one module per data set, each serving genre labels, emotion targets or
both, and ``layouts.py`` to detect and load any of them as one ``Dataset``
(``splits.py``). Nothing here imports numpy or torch, so the CLI can list the layouts."""

LAYOUTS = ("audio", "course", "lse", "ntua", "4q", "emotify", "sources", "vocabulary")
