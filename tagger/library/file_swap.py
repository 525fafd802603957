"""A file replaced by an edited copy of itself: the edit is either all there or not at all.

The copy is made beside the file (hidden, same extension), changed by the caller, synced
and renamed over the file with its permissions, owner and (unless asked) modification time.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tagger.audio import PARTIAL_COPY_MARK
from tagger.errors import TaggerError

# Called with the file and its finished copy right before the copy replaces the file; raising
# leaves the file as it is.
SwapCheck = Callable[[Path, Path], None]


class TagWriteError(TaggerError):
    """A file's tag could not be read or written."""



def check_writable(path: Path) -> None:
    """Raise TagWriteError for a file that is read-only: one we may not write, or one whose
    owner took its write permission away (which even root respects here)."""
    target = os.path.realpath(path)
    if not os.access(target, os.W_OK) or not os.stat(target).st_mode & stat.S_IWUSR:
        raise TagWriteError("is read-only, so genre-tag leaves it alone", str(path),
                            "make it writable (chmod u+w) to tag it")


def remove_stale_copies(target: Path) -> None:
    """Delete copies of ``target`` that a killed run (power cut, SIGKILL) left beside it."""
    pattern = f".{glob.escape(target.name)}.*{PARTIAL_COPY_MARK}*"
    for stale in target.parent.glob(pattern):
        with contextlib.suppress(OSError):
            stale.unlink()


@contextlib.contextmanager
def edited_copy(path: Path, keep_mtime: bool = True, before_swap: SwapCheck | None = None
                ) -> Iterator[Path]:
    """A hidden copy of ``path`` beside it (same extension), for the block to change. When
    the block ends, the copy is synced and renamed over the file, with the file's
    permissions, owner and (``keep_mtime``) modification time; when it raises, the copy
    is deleted and the file is as it was. OSError becomes TagWriteError."""
    target = Path(os.path.realpath(path))
    check_writable(path)
    info = target.stat()
    remove_stale_copies(target)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.",
                                             suffix=PARTIAL_COPY_MARK + target.suffix,
                                             dir=target.parent)
    except OSError as error:
        raise TagWriteError(f"cannot write beside it: {error.strerror or error}", str(path),
                            "make its folder writable to tag it") from error
    try:
        with os.fdopen(handle, "wb") as copy, open(target, "rb") as original:
            shutil.copyfileobj(original, copy, 1 << 20)
        yield Path(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        if before_swap is not None:
            before_swap(target, Path(temporary))
        os.chmod(temporary, info.st_mode & 0o7777)
        with contextlib.suppress(OSError):
            os.chown(temporary, info.st_uid, info.st_gid)
        if keep_mtime:
            os.utime(temporary, ns=(info.st_atime_ns, info.st_mtime_ns))
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise write_failure(error, path) from error
        raise
    sync_folder(target.parent)


def write_failure(error: Exception, path: Path) -> TagWriteError:
    return TagWriteError(f"cannot write its tags: {error}", str(path),
                         "check the disk and the file, then run again")


def sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the system allows opening folders)."""
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
