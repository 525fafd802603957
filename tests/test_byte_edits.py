"""The bytes kept for a byte-exact restore: the original rebuilt exactly, and little kept when
a tag write moves a large cover."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import mutagen
import pytest
from audio_fixtures import chord, write_audio
from mutagen.flac import Picture
from mutagen.id3 import APIC

from tagger.library.byte_edits import byte_edit, rebuild_original
from tagger.library.tagfiles import write_fields
from tagger.library.undo import UndoStore
from tagger.library.write import read_file_tags


def edited(data: bytes, seed: int) -> bytes:
    """``data`` with a few tag-write-like changes: bytes inserted, replaced and removed at
    random places, the rest moved but unchanged."""
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        place = rng.randrange(len(out))
        kind = rng.choice(["insert", "replace", "remove"])
        size = rng.randint(1, 300)
        if kind == "insert":
            out[place:place] = rng.randbytes(size)
        elif kind == "replace":
            out[place:place + size] = rng.randbytes(size)
        else:
            del out[place:place + size]
    return bytes(out)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("seed", range(8))
def test_two_edits_in_a_row_rebuild_the_first_original_exactly(tmp_path: Path,
                                                                seed: int) -> None:
    original = random.Random(seed).randbytes(300_000)
    first, second = edited(original, seed), edited(edited(original, seed), seed + 100)
    paths = {name: tmp_path / name for name in ("original", "first", "second", "rebuilt")}
    for name, data in (("original", original), ("first", first), ("second", second)):
        paths[name].write_bytes(data)
    edit = byte_edit(paths["original"], paths["first"], None, sha256(original))
    assert edit is not None
    again = byte_edit(paths["first"], paths["second"], edit, sha256(first))
    assert again is not None and again.original_sha256 == sha256(original)
    rebuild_original(paths["second"], again, paths["rebuilt"])
    assert paths["rebuilt"].read_bytes() == original
    assert again.kept_bytes < 5_000  # the edits' bytes, not the 300 kB around them


def with_cover(path: Path) -> Path:
    cover = os.urandom(400_000)  # as incompressible as a JPEG
    audio = mutagen.File(path)
    if path.suffix == ".mp3":
        audio.tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="", data=cover))
    else:
        picture = Picture()
        picture.data, picture.type, picture.mime = cover, 3, "image/jpeg"
        audio.add_picture(picture)
    audio.save()
    return path


@pytest.mark.parametrize("extension", [".mp3", ".flac"])
def test_a_cover_behind_the_genre_is_not_kept_again(tmp_path: Path, extension: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = with_cover(write_audio(tmp_path / f"song{extension}", chord(2.0, 44100), 44100))
    original = path.read_bytes()
    store = UndoStore()
    kept: list[int] = []

    def keep(target: Path, copy: Path) -> None:
        earlier = store.replaced_bytes(sha256(target.read_bytes()))
        edit = byte_edit(target, copy, earlier, sha256(target.read_bytes()))
        assert edit is not None
        kept.append(edit.kept_bytes)
        store.remember_bytes(sha256(copy.read_bytes()), edit)

    write_fields(path, {"genre": ["Pop", "R&B"], "provenance": ["{}"]}, before_swap=keep)
    write_fields(path, {"genre": ["Latin"], "mood": ["Happy"]}, before_swap=keep)
    assert read_file_tags(path).fields["genre"] == ["Latin"]
    assert max(kept) < 2_000
    stored = store.replaced_bytes(sha256(path.read_bytes()))
    assert stored is not None
    rebuild_original(path, stored, tmp_path / "rebuilt")
    assert (tmp_path / "rebuilt").read_bytes() == original
