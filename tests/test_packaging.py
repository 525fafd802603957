"""The wheel carries every subpackage and the bundled weights; the version is written in
one place and is the newest release of the changelog."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

import tagger
from tagger.cli import main

ROOT = Path(__file__).resolve().parents[1]
# Keep a Changelog's release heading; "## [Unreleased]" is not one.
RELEASE_HEADING = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.MULTILINE)


@pytest.mark.slow
def test_the_wheel_carries_every_module_and_the_weights(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("genre_tag-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tagger").rglob("*.py")
               if "weights" not in p.parts}
    weights = {f"tagger/weights/{p.name}" for p in (ROOT / "weights").iterdir()
               if p.suffix in (".safetensors", ".json", ".md")}
    graphs = {f"tagger/weights/graphs/{p.name}" for p in (ROOT / "weights" / "graphs").iterdir()}
    assert graphs and weights
    assert modules - packed == set()
    assert weights - packed == set()
    assert graphs - packed == set()


def test_installed_package_has_the_weights() -> None:
    from tagger.cards import bundled_weights_path

    for name in ("genre-musicnn11", "genre-sources11", "genre-gtzan10", "emotion-musicnn",
                 "emotion-4q-emotify", "musicnn-msd", "musicnn-mtt"):
        path = bundled_weights_path(name)
        assert path.is_file() and path.with_suffix(".json").is_file()


def test_the_version_is_written_only_in_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "tagger.__version__"}


def test_the_version_is_the_newest_release_in_the_changelog() -> None:
    releases = RELEASE_HEADING.findall((ROOT / "CHANGELOG.md").read_text())
    assert releases, "CHANGELOG.md has no release heading '## [X.Y.Z] - YYYY-MM-DD'"
    dates = [date for _, date in releases]
    assert dates == sorted(dates, reverse=True), "CHANGELOG.md lists releases newest first"
    assert tagger.__version__ == releases[0][0], (
        f"tagger.__version__ is {tagger.__version__}, CHANGELOG.md's newest release "
        f"{releases[0][0]}: cut a release by dating [Unreleased] and setting __version__")


def test_the_cli_and_the_installed_metadata_give_the_same_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == f"genre-tag, version {tagger.__version__}"
    try:
        installed = metadata.version("genre-tag")
    except metadata.PackageNotFoundError:
        pytest.skip("genre-tag is not installed")
    assert installed == tagger.__version__, "the installed metadata is stale: pip install -e ."
