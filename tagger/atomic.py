"""Output files that are either complete or absent.

A file is written to a temporary file beside its target and renamed into
place; a symbolic link is followed, so the link stays and its target is
replaced. A character device or FIFO (``/dev/null``, a named pipe) is written
directly instead: renaming over it would replace the device with a file.

A temporary file is locked (``flock``) while its process writes it; the lock ends
with the process, however it ends. The temporary files a killed process left beside
a target are removed when the target is next written, and live ones never are.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
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


def temporaries_of(target: Path, names: list[str]) -> list[str]:
    """Those of ``names`` that a temporary file of ``target`` gets (``.NAME.XXXXXXXX``)."""
    prefix = f".{target.name}."
    return [name for name in names if name.startswith(prefix)
            and re.fullmatch(r"[a-z0-9_]{8}", name[len(prefix):])]


def remove_if_abandoned(path: Path) -> None:
    """Remove the temporary file ``path`` when no live process holds its lock."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # gone meanwhile, a symbolic link, or not ours to read
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        found = os.fstat(handle)
        current = os.stat(path, follow_symlinks=False)
        if (stat.S_ISREG(found.st_mode) and found.st_uid == os.geteuid()
                and (current.st_dev, current.st_ino) == (found.st_dev, found.st_ino)):
            os.unlink(path)
    except OSError:  # locked by a live run, or gone meanwhile
        pass
    finally:
        os.close(handle)


def remove_abandoned_temporaries(target: Path) -> None:
    """Remove the temporary files beside ``target`` that killed runs left behind."""
    with contextlib.suppress(OSError):
        for name in temporaries_of(target, os.listdir(target.parent)):
            remove_if_abandoned(target.parent / name)


def locked_in_place(handle: int, temporary: str) -> bool:
    """Lock the new temporary file ``handle``; whether ``temporary`` is still its name (another
    run may have taken it for abandoned before the lock)."""
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        return os.stat(temporary).st_ino == os.fstat(handle).st_ino
    except FileNotFoundError:
        return False


def temporary_beside(target: Path) -> tuple[int, str]:
    """A new temporary file in ``target``'s folder (made when missing), locked for as long
    as its descriptor is open: the descriptor and the path. Abandoned ones go first."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned_temporaries(target)
        while True:
            handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            try:
                kept = locked_in_place(handle, temporary)
            except OSError:
                os.close(handle)
                os.unlink(temporary)
                raise
            if kept:
                return handle, temporary
            os.close(handle)
    except OSError as error:
        raise output_error(error, target, "cannot write here") from error


def replace_with(handle: int, temporary: str, target: Path) -> None:
    """Make the ``temporary`` file open as ``handle`` ``target`` (still locked, so no other
    run takes it for abandoned)."""
    os.fchmod(handle, 0o644)
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
            replace_with(handle, temporary, target)
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

    The first record goes to a temporary file beside the target, which is synced and
    renamed into place at once; every later record is appended to it with one write of
    whole lines. A record that fails half-way (a full disk) is cut off again, so the
    file only ever holds whole records, and a run that ends normally, is interrupted,
    crashes or is killed keeps the records of the songs it finished (and leaves an
    earlier file alone when it finished none). A character device or FIFO gets each
    record directly.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.target = output_target(self.path)
        self.direct = is_stream_device(self.target)
        self.temporary: str | None = None
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
            if self.temporary is not None:
                os.fsync(self.handle)
                replace_with(self.handle, self.temporary, self.target)
                self.temporary = None
        except OSError as error:
            if not self.direct:
                os.ftruncate(self.handle, self.size)
                os.lseek(self.handle, self.size, os.SEEK_SET)
            raise output_error(error, self.path) from error
        self.size += len(data)

    def close(self) -> None:
        """Sync the records written in place (or drop the temporary file none reached)."""
        try:
            try:
                if self.temporary is not None:  # while still locked
                    os.unlink(self.temporary)
                elif not self.direct:
                    os.fsync(self.handle)
            finally:
                os.close(self.handle)
        except OSError as error:
            raise output_error(error, self.path) from error


@contextlib.contextmanager
def record_file(path: Path) -> Iterator[RecordFile]:
    """A ``RecordFile`` that is closed (its records synced) however the block ends."""
    records = RecordFile(path)
    try:
        yield records
    finally:
        records.close()
