"""The beets plugin, run for real: ``beet`` (``python -m beets``) in a subprocess on a beets
library made in the test (its own BEETSDIR and HOME, never the user's beets config)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("beets", minversion="2.7")

from audio_fixtures import chord, synth_song, write_audio
from beets.library import Item, Library
from mediafile import MediaFile

from tagger.cards import bundled_weights_path
from tagger.checkpoints import load_checkpoint, save_checkpoint
from tagger.inference import EmotionTagger, Tagger
from tagger.library.genres import GenrePolicy, choose_genres, tag_names
from tagger.tasks import DEFAULT_GENRE_MODEL

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
directory: {root}/library
library: {root}/beets/library.db
plugins: [genretag]
create_backup_before_migrations: no
ui: {{color: no}}
import: {{write: yes, copy: no, quiet: yes, log: null}}
genretag: {{device: cpu, {settings}}}
"""
SONGS = ("song.mp3", "chords.flac", "human.ogg")


def make_song(path: Path, seed: int, genres: list[str] | None = None) -> Path:
    """A short generated clip titled after its file, with ``genres`` as a human's tag."""
    rate = 48000 if path.suffix == ".ogg" else 44100
    samples = chord(3.0, rate) if "chords" in path.name else synth_song(3.0, rate, seed=seed)
    write_audio(path, samples, rate)
    media = MediaFile(str(path))
    media.title, media.artist = path.stem, "generated"
    if genres:
        media.genres = genres
    media.save()
    return path


class BeetsLibrary:
    """A beets config folder and library of generated songs, and ``beet`` to run on it;
    ``settings`` are the config's ``genretag`` entries."""

    def __init__(self, root: Path, settings: str = "force_uncertain: yes") -> None:
        self.root = root
        self.music = root / "music"
        self.music.mkdir()
        (root / "beets").mkdir()
        (root / "beets" / "config.yaml").write_text(CONFIG.format(root=root, settings=settings))
        for seed, name in enumerate(SONGS):
            make_song(self.music / name, seed, ["Jazz"] if name == "human.ogg" else None)

    def beet(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "BEETSDIR": str(self.root / "beets"), "HOME": str(self.root),
               "XDG_CONFIG_HOME": str(self.root / "config"),
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        return subprocess.run([sys.executable, "-m", "beets", *args], env=env,
                              capture_output=True, text=True, timeout=600)

    def import_songs(self, folder: Path | None = None) -> None:
        done = self.beet("import", "-A", "-s", str(folder or self.music))
        assert done.returncode == 0, done.stderr

    def items(self) -> dict[str, Item]:
        """The library's items by file name, as stored in its database."""
        library = Library(str(self.root / "beets" / "library.db"))
        try:
            return {Path(os.fsdecode(item.path)).name: item for item in library.items()}
        finally:
            library._close()

    def contents(self) -> dict[str, bytes]:
        return {name: (self.music / name).read_bytes() for name in SONGS}


@pytest.fixture
def library(tmp_path: Path) -> BeetsLibrary:
    library = BeetsLibrary(tmp_path)
    library.import_songs()
    return library


def expected_genres(tagger: Tagger, path: Path, **policy: object) -> tuple[list[str], float]:
    choice = choose_genres(tagger.tag_file(path), GenrePolicy(force_uncertain=True, **policy))
    assert choice.genres, "the generated song should get a genre"
    return choice.genres, choice.confidence


def assert_tagged(item: Item, genres: list[str], confidence: float, model: str) -> None:
    assert item.genres == genres
    assert item["genretag_genres"] == "; ".join(genres)  # the flexible attribute, as stored
    assert float(item["genretag_confidence"]) == pytest.approx(confidence, abs=1e-3)
    assert item["genretag_model"] == model


@pytest.mark.slow
def test_items_without_genres_are_tagged_then_left_alone_until_forced(
        library: BeetsLibrary, tagger_cpu: Tagger) -> None:
    model = tagger_cpu.card.name
    human = library.music / "human.ogg"
    assert library.items()["human.ogg"].genres == ["Jazz"]

    first = library.beet("genretag")
    assert first.returncode == 0, first.stderr
    assert "3 items: 2 tagged, 1 left alone" in first.stdout
    items = library.items()
    for name in ("song.mp3", "chords.flac"):
        genres, confidence = expected_genres(tagger_cpu, library.music / name)
        assert_tagged(items[name], genres, confidence, model)
        assert MediaFile(str(library.music / name)).genres == genres
        assert items[name].mtime == int((library.music / name).stat().st_mtime)
    assert items["human.ogg"].genres == ["Jazz"] and "genretag_model" not in items["human.ogg"]
    assert MediaFile(str(human)).genres == ["Jazz"]

    before = library.contents()
    second = library.beet("genretag")
    assert second.returncode == 0, second.stderr
    assert "3 items: 0 tagged, 3 left alone" in second.stdout
    assert library.contents() == before

    forced = library.beet("genretag", "--force", "--tag-format", "model", "--max-genres", "1",
                          "title:human")
    assert forced.returncode == 0, forced.stderr
    genres, confidence = expected_genres(tagger_cpu, human, max_genres=1,
                                         names=tag_names("model"))
    assert genres == [genres[0].lower()]
    assert_tagged(library.items()["human.ogg"], genres, confidence, model)
    assert MediaFile(str(human)).genres == genres
    assert library.contents()["song.mp3"] == before["song.mp3"]


@pytest.mark.slow
def test_pretend_changes_nothing_and_nowrite_changes_only_the_library(
        library: BeetsLibrary, tagger_cpu: Tagger) -> None:
    before = library.contents()
    pretend = library.beet("genretag", "--pretend", "--force")
    assert pretend.returncode == 0, pretend.stderr
    genres, _ = expected_genres(tagger_cpu, library.music / "song.mp3")
    assert f"+ {genres[0]}" in pretend.stdout and "pretend: nothing changed" in pretend.stdout
    assert library.contents() == before
    assert [item.genres for item in library.items().values()].count([]) == 2

    stored = library.beet("genretag", "-W")
    assert stored.returncode == 0, stored.stderr
    assert library.items()["song.mp3"].genres == genres
    assert library.contents() == before


@pytest.mark.slow
def test_a_broken_file_is_reported_in_one_line_and_the_others_are_tagged(
        library: BeetsLibrary) -> None:
    (library.music / "song.mp3").write_bytes(b"\xff\xfb" + os.urandom(3000))
    run = library.beet("genretag")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    reports = [line for line in run.stderr.splitlines() if "song.mp3" in line]
    assert len(reports) == 1 and "not a readable audio file" in reports[0]
    assert "1 of 3 items failed" in run.stderr
    assert "3 items: 1 tagged, 1 left alone (already tagged; --force replaces), 1 failed" \
        in run.stdout
    items = library.items()
    assert items["song.mp3"].genres == [] and "genretag_model" not in items["song.mp3"]
    assert items["chords.flac"].genres != []


# A plugin for the test below: every tag save truncates the file it writes, then stops the
# run as Ctrl-C would, as a crash in the middle of a save.
HALF_SAVE_PLUGIN = """
import mediafile
from beets.plugins import BeetsPlugin


def half_save(self, **kwargs):
    with open(self.filename, "r+b") as written:
        written.truncate(100)
    raise KeyboardInterrupt


class HalfSave(BeetsPlugin):
    def __init__(self):
        super().__init__()
        mediafile.MediaFile.save = half_save
"""


@pytest.mark.slow
def test_a_write_stopped_halfway_leaves_the_file_as_it_was(
        library: BeetsLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugins = tmp_path / "plugins" / "beetsplug"
    plugins.mkdir(parents=True)
    (plugins / "halfsave.py").write_text(HALF_SAVE_PLUGIN)
    monkeypatch.setenv("PYTHONPATH", str(plugins.parent))
    config = library.root / "beets" / "config.yaml"
    config.write_text(config.read_text().replace("[genretag]", "[genretag, halfsave]"))
    before = library.contents()
    stopped = library.beet("genretag", "-w")  # beets exits 0 after Ctrl-C
    assert f"genretag_model: {DEFAULT_GENRE_MODEL}" in stopped.stdout  # the first item's...
    assert " items: " not in stopped.stdout  # ...whose write stopped the run
    assert library.contents() == before
    assert sorted(p.name for p in library.music.iterdir()) == sorted(SONGS)


@pytest.mark.slow
def test_an_uncertain_song_gets_no_genre_and_keeps_the_one_it_has(tmp_path: Path) -> None:
    library = BeetsLibrary(tmp_path, settings="force_uncertain: no")
    library.import_songs()
    bundled = load_checkpoint(bundled_weights_path())
    calibration = {**bundled.card.calibration, "uncertain_below": 0.999}
    never = {"thresholds": dict.fromkeys(bundled.card.classes, 1.0)}  # no genre reaches 1
    strict = tmp_path / "strict.safetensors"
    save_checkpoint(bundled.model, dataclasses.replace(
        bundled.card, name="strict", calibration=calibration, song_genres=never), strict)
    before = library.contents()

    run = library.beet("genretag", "--force", "--weights", str(strict))
    assert run.returncode == 0, run.stderr
    assert "3 items: 0 tagged, 3 without a genre (uncertain)" in run.stdout
    items = library.items()
    assert [items[name].genres for name in SONGS] == [[], [], ["Jazz"]]
    for name in SONGS:
        assert items[name]["genretag_model"] == "strict"
        assert items[name]["genretag_genres"] == ""
        assert 0 < float(items[name]["genretag_confidence"]) < 0.999
    assert library.contents() == before


@pytest.mark.slow
def test_emotion_is_stored_on_request_even_for_items_that_keep_their_genre(
        library: BeetsLibrary) -> None:
    run = library.beet("genretag", "--emotion", "title:human")
    assert run.returncode == 0, run.stderr
    item = library.items()["human.ogg"]
    assert item.genres == ["Jazz"] and "genretag_model" not in item
    values = EmotionTagger.load(device="cpu").tag_file(library.music / "human.ogg").song_values()
    for target, value in values.items():
        assert float(item[f"genretag_{target}"]) == pytest.approx(value, abs=1e-3)


@pytest.mark.slow
def test_auto_tags_items_on_import(tmp_path: Path, tagger_cpu: Tagger) -> None:
    library = BeetsLibrary(tmp_path, settings="force_uncertain: yes, auto: yes")
    library.import_songs()
    items = library.items()
    genres, confidence = expected_genres(tagger_cpu, library.music / "song.mp3")
    assert_tagged(items["song.mp3"], genres, confidence, tagger_cpu.card.name)
    assert items["human.ogg"].genres == ["Jazz"]


@pytest.mark.parametrize(("args", "message"), [
    (["--min-share", "2"], "min_share must be between 0 and 1, not 2.0"),
    (["--max-genres", "0"], "max_genres must be 1 or more"),
    (["--tag-format", "missing.json"], "missing.json: cannot read the tag names"),
])
@pytest.mark.slow
def test_bad_options_stop_with_one_line(library: BeetsLibrary, args: list[str],
                                        message: str) -> None:
    run = library.beet("genretag", *args)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [run.stderr.strip()]
    assert message in run.stderr and "Traceback" not in run.stderr


def test_genre_tag_itself_does_not_import_beets() -> None:
    check = "import sys, tagger.cli; print(sorted(m for m in sys.modules if 'beet' in m))"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_wheel_adds_the_plugin_to_the_beetsplug_namespace(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("genre_tag-*.whl")
    packed = zipfile.ZipFile(wheel).namelist()
    assert [name for name in packed if name.startswith("beetsplug/")] == ["beetsplug/genretag.py"]
    metadata = next(n for n in packed if n.endswith(".dist-info/METADATA"))
    assert "Provides-Extra: beets" in zipfile.ZipFile(wheel).read(metadata).decode()
