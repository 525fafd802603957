"""The wheel carries every subpackage and the bundled weights."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "tagger").rglob("__init__.py")}
    found |= {"tagger.weights"}  # tagger/weights links to the top-level weights/ folder
    assert listed == found


def test_installed_package_has_the_weights() -> None:
    from tagger.checkpoints import bundled_weights_path

    for name in ("genre-musicnn11", "genre-sources11", "genre-gtzan10", "emotion-musicnn",
                 "emotion-4q-emotify", "musicnn-msd", "musicnn-mtt"):
        path = bundled_weights_path(name)
        assert path.is_file() and path.with_suffix(".json").is_file()
