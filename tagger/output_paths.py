"""Where a run's outputs go: checked before any work (none may be an input or the output
of two options), and the per-song files of ``--png``, ``--cue`` and ``--chapters``: the
option's file for one song, one file per song in its folder for several."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tagger.atomic import is_stream_device, output_target
from tagger.errors import OutputError
from tagger.names import file_name_for
from tagger.render.records import STDOUT

FileIdentity = tuple[int, int]


def file_identity(path: Path) -> FileIdentity | None:
    """The device and inode of ``path`` (links followed); None when there is no such file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


@dataclass
class TakenPaths:
    """Paths no PNG of the run may be written to: the inputs (by device and inode, so hard
    and symbolic links count) and the other outputs (by resolved path)."""

    inputs: set[FileIdentity] = field(default_factory=set)
    outputs: set[str] = field(default_factory=set)

    def __contains__(self, path: Path) -> bool:
        return (file_identity(path) in self.inputs
                or os.path.realpath(path) in self.outputs)


def check_output_paths(outputs: dict[str, str | None], per_song: dict[str, Path | None],
                       inputs: list[Path]) -> TakenPaths:
    """Fail before any work when an output cannot be written, is one of the inputs, or is
    given to two options; return the paths the run must not write a per-song file to.

    ``outputs`` are the files of options such as ``--json`` (``-`` is standard output),
    ``per_song`` those of ``--png`` and its like, which may be folders (made when missing).
    """
    taken = TakenPaths({identity for path in inputs if (identity := file_identity(path))})
    options = {**outputs, **{option: None if path is None or path.is_dir() else str(path)
                             for option, path in per_song.items()}}
    claimed: dict[FileIdentity | str, str] = {}
    for option, target in options.items():
        if not target or target == STDOUT:
            continue
        path = Path(target)
        output_target(path)  # refuses a folder, a block device, a socket
        folder = path.parent
        if option not in per_song and (not folder.is_dir() or not os.access(folder, os.W_OK)):
            raise OutputError("cannot write here: the folder is missing or read-only", target,
                              "choose another output path")
        identity = file_identity(path)
        if identity in taken.inputs:
            raise OutputError(f"is one of the inputs, which {option} would overwrite", target,
                              "give another output path")
        if is_stream_device(path):
            continue  # /dev/null may take every output
        key = identity or os.path.realpath(path)
        if key in claimed:
            raise OutputError(f"is given to both {claimed[key]} and {option}", target,
                              "give each output its own file")
        claimed[key] = option
        taken.outputs.add(os.path.realpath(path))
    return taken


def check_song_folder(option: str, path: Path | None, suffix: str, n_songs: int) -> None:
    """With several songs a per-song option (``--png``) is a folder: refuse a file, or a
    new name with the extension of the option's ``suffix`` (``.txt`` of ``.chapters.txt``)."""
    if path is None or n_songs < 2 or path.is_dir():
        return
    if path.exists() or path.suffix.lower() == "." + suffix.rsplit(".", 1)[-1]:
        raise OutputError(f"{n_songs} songs are tagged, so {option} needs a folder for one "
                          f"file per song, not a file", str(path),
                          "give a folder name; it is made when missing")


class SongFileTargets:
    """Where each song's file of one per-song option goes: the option's path itself for a
    single song (unless it is a folder), else ``TITLE`` + ``suffix`` in that folder. A
    name that an earlier song of the run took (whatever its case), or that is an input
    or another output, gets a number: ``TITLE (2).png``."""

    def __init__(self, path: Path | None, suffix: str, n_songs: int, taken: TakenPaths) -> None:
        self.path = path
        self.suffix = suffix
        self.single_file = path is not None and n_songs == 1 and not path.is_dir()
        self.taken = taken
        self.given: set[str] = set()

    def target(self, title: str) -> Path | None:
        if self.path is None or self.single_file:
            return self.path
        number = 1
        while True:
            name = file_name_for(title, self.suffix, number)
            path = self.path / name
            if name.casefold() not in self.given and path not in self.taken:
                self.given.add(name.casefold())
                return path
            number += 1
