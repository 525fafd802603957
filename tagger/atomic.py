"""Output files that are either complete or absent.

A file is written to a temporary file beside its target and renamed into
place; a symbolic link is followed, so the link stays and its target is
replaced. A character device or FIFO (``/dev/null``, a named pipe) is written
directly instead: renaming over it would replace the device with a file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tagger.errors import OutputError


def output_error(error: OSError, path: Path, what: str = "cannot write") -> OutputError:
    return OutputError(f"{what}: {error.strerror or error}", str(path),
                       "choose another output path")


def is_stream_device(path: Path) -> bool:
    """Whether ``path`` is a character device or a FIFO, which are written in place."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def output_target(path: Path) -> Path:
    """The path a write to ``path`` lands on: symbolic links followed. Raises OutputError
    for a folder or a device that only a stream may be written to."""
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as error:
        raise output_error(error, path) from error
    if stat.S_ISDIR(mode):
        raise OutputError("is a folder, not a file", str(path), "give a file name")
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise OutputError("is a device or socket, not a file", str(path),
                          "give a file name")
    return target


def temporary_beside(target: Path) -> tuple[int, str]:
    """A new temporary file in ``target``'s folder (made when missing): its descriptor and
    path."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as error:
        raise output_error(error, target, "cannot write here") from error


def replace_with(temporary: str, target: Path) -> None:
    """Make the finished ``temporary`` file ``target``."""
    os.chmod(temporary, 0o644)
    os.replace(temporary, target)


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open ``path`` for writing so that it is replaced only on success (a character device
    or FIFO is written directly)."""
    target = output_target(Path(path))
    binary = "b" in mode
    options = {"encoding": None if binary else encoding, "newline": None if binary else ""}
    if is_stream_device(target):
        try:
            with open(target, mode, **options) as stream:
                yield stream
        except OSError as error:
            raise output_error(error, Path(path)) from error
        return
    handle, temporary = temporary_beside(target)
    try:
        with os.fdopen(handle, mode, **options) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        replace_with(temporary, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise output_error(error, Path(path)) from error
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as stream:
        stream.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w") as stream:
        stream.write(text)


class RecordFile:
    """An output written one whole record at a time, kept when the run stops for any reason.

    Records go to a temporary file beside the target; a record that fails half-way
    (a full disk) is cut off again, so the file only ever holds whole records.
    ``close`` renames it into place once it holds a record, so a run that ends
    normally, is interrupted or crashes keeps the records of the songs it finished
    (and leaves an earlier file alone when it finished none). A character device or
    FIFO gets each record directly.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.target = output_target(self.path)
        self.direct = is_stream_device(self.target)
        self.temporary: str | None = None
        self.records = 0
        self.size = 0
        if self.direct:
            try:
                self.handle = os.open(self.target, os.O_WRONLY)
            except OSError as error:
                raise output_error(error, self.path) from error
        else:
            self.handle, self.temporary = temporary_beside(self.target)

    def write(self, data: bytes) -> None:
        """Append one record (whole lines), or nothing when it cannot be written whole."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.handle, view):]
        except OSError as error:
            if not self.direct:
                os.ftruncate(self.handle, self.size)
                os.lseek(self.handle, self.size, os.SEEK_SET)
            raise output_error(error, self.path) from error
        self.size += len(data)
        self.records += 1

    def close(self) -> None:
        """Put the records written so far in place (or drop an empty temporary file)."""
        keep = self.temporary is not None and self.records > 0
        try:
            try:
                if keep:
                    os.fsync(self.handle)
            finally:
                os.close(self.handle)
            if self.temporary is not None:
                if keep:
                    replace_with(self.temporary, self.target)
                else:
                    os.unlink(self.temporary)
        except OSError as error:
            if self.temporary is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.temporary)
            raise output_error(error, self.path) from error


@contextlib.contextmanager
def record_file(path: Path) -> Iterator[RecordFile]:
    """A ``RecordFile`` that is closed (its records put in place) however the block ends."""
    records = RecordFile(path)
    try:
        yield records
    finally:
        records.close()
