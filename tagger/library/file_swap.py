"""A file replaced by an edited copy of itself: the edit is either all there or not at all.

The copy is made beside the file (hidden, same extension), changed by the caller, synced
and renamed over the file with what the file was: its mode, owner, group, extended
attributes (ACLs among them) and, unless asked, its modification time. A file whose
identity a copy cannot keep is refused before anything is written: one with several hard
links (the other names would keep the old content) or, for a user who is not root, one
that belongs to another user or group. Swaps in one folder take the folder's lock, so
two runs (or genre-tag and the beets plugin) never meet each other's live copies, and a
file that changed while its copy was edited is left as it is. The copies a killed run
left are removed folder by folder (``remove_stale_copies_in``) when a run starts.
"""

from __future__ import annotations

import contextlib
import errno
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
NAME_MAX = 255  # bytes in a file name, on every common file system
RANDOM_PART = 8  # the characters tempfile adds to a name
NO_XATTRS = {errno.ENOTSUP, errno.ENOSYS, errno.EOPNOTSUPP}


class TagWriteError(TaggerError):
    """A file's tag could not be read or written."""


class ChangedMeanwhile(TagWriteError):
    """The file changed while genre-tag wrote it (another program, or another run)."""


def copy_stem(target: Path) -> str:
    """The start of the names of ``target``'s copies: ``.NAME.``, with NAME cut so that a
    copy's name fits in NAME_MAX bytes."""
    room = (NAME_MAX - 2 - RANDOM_PART - len(PARTIAL_COPY_MARK)
            - len(os.fsencode(target.suffix)))
    return f".{os.fsdecode(os.fsencode(target.name)[:room])}."


def keeps_owner(info: os.stat_result) -> bool:
    """Whether this process can give a new file the owner and group of ``info``."""
    if os.geteuid() == 0:
        return True
    return info.st_uid == os.geteuid() and (
        info.st_gid == os.getegid() or info.st_gid in os.getgroups())


def check_writable(path: Path) -> None:
    """Raise TagWriteError for a file genre-tag may not replace with an edited copy: one
    that is read-only (we may not write it, or its owner took its write permission away,
    which even root respects here), has several hard links, or belongs to someone whose
    ownership the copy could not keep."""
    target = os.path.realpath(path)
    info = os.stat(target)
    if not os.access(target, os.W_OK) or not info.st_mode & stat.S_IWUSR:
        raise TagWriteError("is read-only, so genre-tag leaves it alone", str(path),
                            "make it writable (chmod u+w) to tag it")
    if info.st_nlink > 1:
        raise TagWriteError(
            f"has {info.st_nlink} hard links, and writing it would split them (the other "
            "names would keep the old tags), so genre-tag leaves it alone", str(path),
            "tag one copy: cp it to a new name and move that over it")
    if not keeps_owner(info):
        raise TagWriteError(
            "belongs to another user or group, and writing it would make it yours, so "
            "genre-tag leaves it alone", str(path), "run genre-tag as its owner")


def remove_stale_copies_in(folder: Path) -> int:
    """Delete every copy a killed run (power cut, SIGKILL) left in ``folder``; how many.
    It holds the folder's lock, so no copy there is live."""
    removed = 0
    with folder_lock(folder):
        for stale in folder.glob(f".*{PARTIAL_COPY_MARK}*"):
            with contextlib.suppress(OSError):
                stale.unlink()
                removed += 1
    return removed


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock (an advisory lock on the folder itself) for the block. Where
    the file system has no locks, the block runs without one."""
    import fcntl

    try:
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        handle = None
    try:
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        if handle is not None:
            os.close(handle)  # releases the lock


def identity(info: os.stat_result) -> tuple[int, ...]:
    """What changes when anyone writes, replaces or re-links a file."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
            info.st_nlink)


def copy_attributes(info: os.stat_result, source: Path, copy: Path, keep_mtime: bool) -> None:
    """Give ``copy`` the owner, group, mode, extended attributes and (``keep_mtime``) times
    that ``source`` has (``info``)."""
    try:
        os.chown(copy, info.st_uid, info.st_gid)
    except OSError:
        now = os.stat(copy)
        if (now.st_uid, now.st_gid) != (info.st_uid, info.st_gid):
            raise
    os.chmod(copy, info.st_mode & 0o7777)
    if hasattr(os, "listxattr"):
        try:
            names = os.listxattr(source)
        except OSError as error:
            if error.errno not in NO_XATTRS:
                raise
            names = []
        for name in names:
            os.setxattr(copy, name, os.getxattr(source, name))
    if keep_mtime:
        os.utime(copy, ns=(info.st_atime_ns, info.st_mtime_ns))


@contextlib.contextmanager
def edited_copy(path: Path, keep_mtime: bool = True, before_swap: SwapCheck | None = None
                ) -> Iterator[Path]:
    """A hidden copy of ``path`` beside it (same extension), for the block to change. When
    the block ends, ``before_swap`` runs, and the copy is synced and renamed over the file
    with what the file was, unless the file changed meanwhile (ChangedMeanwhile); when
    anything raises, the copy is deleted and the file is as it was. OSError becomes
    TagWriteError."""
    target = Path(os.path.realpath(path))
    check_writable(path)
    with folder_lock(target.parent):
        info = target.stat()
        try:
            handle, temporary = tempfile.mkstemp(prefix=copy_stem(target),
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
            copy_attributes(info, target, Path(temporary), keep_mtime)
            if identity(os.stat(target)) != identity(info):
                raise ChangedMeanwhile("changed while genre-tag wrote it, so genre-tag left it "
                                       "as it is", str(path), "run again to tag it")
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
