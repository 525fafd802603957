"""The bytes a tag write replaced, kept so that ``--restore-tags`` gives the original file back
byte for byte.

A tag write changes one stretch of a file (the tag, and the padding or headers around
it); the bytes before it and after it stay. ``byte_edit`` finds that stretch by comparing
the file with its edited copy from both ends, and keeps the original's bytes of it. Over
a file genre-tag wrote before, the new edit is joined with the earlier one, so the
original kept is always the file as it was before genre-tag first wrote it.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tagger.library.undo import ByteEdit

# A larger changed stretch (a format whose writer moves the audio, such as Ogg's pages)
# is not kept: such a file is restored field by field.
MAX_KEPT_BYTES = 16 << 20
COMPARE_BLOCK = 1 << 16


@contextmanager
def mapped(path: Path) -> Iterator[mmap.mmap | bytes]:
    """The file's bytes, mapped (an empty file: no bytes)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            yield view


def file_sha256(path: Path) -> str:
    with mapped(path) as view:
        return hashlib.sha256(view).hexdigest()


def first_difference(a: mmap.mmap | bytes, b: mmap.mmap | bytes, start: int, end: int) -> int:
    """The first index in ``[start, end)`` where ``a`` and ``b`` differ (``end``: none)."""
    while start < end:
        stop = min(start + COMPARE_BLOCK, end)
        if a[start:stop] != b[start:stop]:
            low, high = start, stop  # a difference lies in [low, high)
            while high - low > 1:
                middle = (low + high) // 2
                if a[low:middle] != b[low:middle]:
                    high = middle
                else:
                    low = middle
            return low
        start = stop
    return end


def common_suffix(a: mmap.mmap | bytes, b: mmap.mmap | bytes, limit: int) -> int:
    """How many bytes at the end ``a`` and ``b`` share, at most ``limit``."""
    length = 0
    while length < limit:
        size = min(COMPARE_BLOCK, limit - length)
        a_block = a[len(a) - length - size:len(a) - length]
        b_block = b[len(b) - length - size:len(b) - length]
        if a_block != b_block:
            low, high = 0, size  # the shared tail of the blocks is between low and high
            while low < high:
                middle = (low + high + 1) // 2
                if a_block[size - middle:] == b_block[size - middle:]:
                    low = middle
                else:
                    high = middle - 1
            return length + low
        length += size
    return length


def byte_edit(original: Path, written: Path, earlier: ByteEdit | None,
              original_sha256: str) -> ByteEdit | None:
    """How to get back from ``written`` to ``original`` (or, where ``original`` is itself
    a file genre-tag wrote, with the ``earlier`` edit, to what that file was first); None
    when the changed stretch is too long to keep."""
    with mapped(original) as old, mapped(written) as new:
        prefix = first_difference(old, new, 0, min(len(old), len(new)))
        suffix = common_suffix(old, new, min(len(old), len(new)) - prefix)
        if earlier is None:
            if len(old) - prefix - suffix > MAX_KEPT_BYTES:
                return None
            return ByteEdit(original_sha256, prefix, suffix, old[prefix:len(old) - suffix])
        start, tail = min(prefix, earlier.prefix), min(suffix, earlier.suffix)
        if (earlier.prefix - start) + len(earlier.middle) + (earlier.suffix - tail) \
                > MAX_KEPT_BYTES:
            return None
        middle = (old[start:earlier.prefix] + earlier.middle
                  + old[len(old) - earlier.suffix:len(old) - tail])
        return ByteEdit(earlier.original_sha256, start, tail, middle)


def rebuild_original(written: Path, edit: ByteEdit, into: Path) -> None:
    """Write the original that ``edit`` keeps of ``written`` into ``into``."""
    with mapped(written) as new, open(into, "wb") as out:
        copy_range(new, 0, edit.prefix, out)
        out.write(edit.middle)
        copy_range(new, len(new) - edit.suffix, len(new), out)


def copy_range(view: mmap.mmap | bytes, start: int, stop: int, out: BinaryIO) -> None:
    for block in range(start, stop, 1 << 20):
        out.write(view[block:min(block + (1 << 20), stop)])
