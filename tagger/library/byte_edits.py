"""The bytes a tag write replaced, kept so that ``--restore-tags`` gives the original file back
byte for byte.

A tag write changes a few stretches of a file (frames added or changed, padding that
shrinks) and moves the rest, such as the cover art behind the changed frames, unchanged.
``byte_edit`` describes the original as pieces: stretches of the written file, and the
original's own bytes only where nothing in the written file matches. The stretches are
found from both ends of the file and around anchors (a short run of the original found
again in the written file, then grown both ways), in linear time: a binary diff such as
bsdiff finds as much here, but takes seconds for the megabytes of a large cover. Over a
file genre-tag wrote before, the new edit is joined with the earlier one, so the original
kept is always the file as it was before genre-tag first wrote it.
"""

from __future__ import annotations

import bisect
import hashlib
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

Buffer = mmap.mmap | bytes
# A stretch of the written file (start, stop), or bytes of the original.
Piece = tuple[int, int] | bytes
# More bytes of the original than this (a format whose writer moves the audio, such as
# Ogg's renumbered pages) are not kept: such a file is restored field by field.
MAX_KEPT_BYTES = 16 << 20
COMPARE_BLOCK = 1 << 16
ANCHOR_BYTES = 64  # the run looked for again
ANCHOR_DEPTH = 4  # anchors within anchors: up to 15 moved stretches
ANCHOR_PLACES = (0.5, 0.25, 0.75)  # where in a changed stretch anchors are taken


@dataclass(frozen=True)
class ByteEdit:
    """How to get a file's original bytes back from the file genre-tag wrote: its pieces
    in order; the result's sha256 is ``original_sha256``."""

    original_sha256: str
    pieces: tuple[Piece, ...]

    @property
    def kept_bytes(self) -> int:
        return sum(len(piece) for piece in self.pieces if isinstance(piece, bytes))


def piece_length(piece: Piece) -> int:
    return len(piece) if isinstance(piece, bytes) else piece[1] - piece[0]


@contextmanager
def mapped(path: Path) -> Iterator[Buffer]:
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


def first_difference(a_block: bytes, b_block: bytes) -> int:
    """Where two blocks of one length first differ (they do)."""
    low, high = 0, len(a_block)  # they agree on [0, low) and differ within [0, high)
    while high - low > 1:
        middle = (low + high) // 2
        if a_block[low:middle] == b_block[low:middle]:
            low = middle
        else:
            high = middle
    return low if a_block[low] != b_block[low] else high


def shared_run(a: Buffer, a_start: int, a_stop: int, b: Buffer, b_start: int, b_stop: int,
               from_end: bool) -> int:
    """How many bytes ``a[a_start:a_stop]`` and ``b[b_start:b_stop]`` share at the start
    (at the end: ``from_end``)."""
    limit, length = min(a_stop - a_start, b_stop - b_start), 0
    while length < limit:
        size = min(COMPARE_BLOCK, limit - length)
        if from_end:
            a_block = a[a_stop - length - size:a_stop - length][::-1]
            b_block = b[b_stop - length - size:b_stop - length][::-1]
        else:
            a_block = a[a_start + length:a_start + length + size]
            b_block = b[b_start + length:b_start + length + size]
        if a_block != b_block:
            return length + first_difference(a_block, b_block)
        length += size
    return length


def common_prefix(a: Buffer, a_start: int, a_stop: int, b: Buffer, b_start: int,
                  b_stop: int) -> int:
    return shared_run(a, a_start, a_stop, b, b_start, b_stop, from_end=False)


def common_suffix(a: Buffer, a_start: int, a_stop: int, b: Buffer, b_start: int,
                  b_stop: int) -> int:
    return shared_run(a, a_start, a_stop, b, b_start, b_stop, from_end=True)


def pieces_of(old: Buffer, old_start: int, old_stop: int, new: Buffer, new_start: int,
              new_stop: int, depth: int) -> list[Piece]:
    """Pieces that rebuild ``old[old_start:old_stop]`` from ``new[new_start:new_stop]``."""
    prefix = common_prefix(old, old_start, old_stop, new, new_start, new_stop)
    suffix = common_suffix(old, old_start + prefix, old_stop, new, new_start + prefix, new_stop)
    pieces: list[Piece] = [(new_start, new_start + prefix)] if prefix else []
    old_start, new_start = old_start + prefix, new_start + prefix
    old_stop, new_stop = old_stop - suffix, new_stop - suffix
    size = old_stop - old_start
    for place in ANCHOR_PLACES if depth and size >= 4 * ANCHOR_BYTES else ():
        anchor = old_start + int(size * place)
        probe = old[anchor:anchor + ANCHOR_BYTES]
        if probe.count(probe[:1]) == len(probe):  # padding: found anywhere
            continue
        found = new.find(probe, new_start, new_stop)
        if found < 0:
            continue
        before = common_suffix(old, old_start, anchor, new, new_start, found)
        after = common_prefix(old, anchor, old_stop, new, found, new_stop)
        pieces += pieces_of(old, old_start, anchor - before, new, new_start, found - before,
                            depth - 1)
        pieces.append((found - before, found + after))
        pieces += pieces_of(old, anchor + after, old_stop, new, found + after, new_stop,
                            depth - 1)
        break
    else:
        if size:
            pieces.append(old[old_start:old_stop])
    if suffix:
        pieces.append((new_stop, new_stop + suffix))
    return pieces


def merged(pieces: list[Piece]) -> tuple[Piece, ...]:
    """``pieces`` with neighbouring stretches and neighbouring bytes joined."""
    out: list[Piece] = []
    for piece in pieces:
        last = out[-1] if out else None
        if isinstance(piece, bytes) and isinstance(last, bytes):
            out[-1] = last + piece
        elif isinstance(piece, tuple) and isinstance(last, tuple) and last[1] == piece[0]:
            out[-1] = (last[0], piece[1])
        elif piece_length(piece):
            out.append(piece)
    return tuple(out)


def compose(outer: ByteEdit, inner: ByteEdit) -> ByteEdit:
    """``outer`` rebuilds the original from a file that ``inner`` rebuilds from the newly
    written one: one edit from the new file to the original."""
    starts, position = [], 0  # where each of inner's pieces starts in the file it rebuilds
    for piece in inner.pieces:
        starts.append(position)
        position += piece_length(piece)
    pieces: list[Piece] = []
    for piece in outer.pieces:
        if isinstance(piece, bytes):
            pieces.append(piece)
            continue
        start, stop = piece
        index = max(bisect.bisect_right(starts, start) - 1, 0)
        while start < stop:
            part, offset = inner.pieces[index], starts[index]
            end = min(stop, offset + piece_length(part))
            pieces.append(part[start - offset:end - offset] if isinstance(part, bytes)
                          else (part[0] + start - offset, part[0] + end - offset))
            start, index = end, index + 1
    return ByteEdit(outer.original_sha256, merged(pieces))


def byte_edit(original: Path, written: Path, earlier: ByteEdit | None,
              original_sha256: str) -> ByteEdit | None:
    """How to get back from ``written`` to ``original`` (or, where ``original`` is itself
    a file genre-tag wrote, with the ``earlier`` edit, to what that file was first); None
    when too much of the original would have to be kept."""
    with mapped(original) as old, mapped(written) as new:
        edit = ByteEdit(original_sha256, merged(
            pieces_of(old, 0, len(old), new, 0, len(new), ANCHOR_DEPTH)))
    if earlier is not None:
        edit = compose(earlier, edit)
    return edit if edit.kept_bytes <= MAX_KEPT_BYTES else None


def rebuild_original(written: Path, edit: ByteEdit, into: Path) -> None:
    """Write the original that ``edit`` keeps of ``written`` into ``into``."""
    with mapped(written) as new, open(into, "wb") as out:
        for piece in edit.pieces:
            if isinstance(piece, bytes):
                out.write(piece)
            else:
                copy_range(new, *piece, out)


def copy_range(view: Buffer, start: int, stop: int, out: BinaryIO) -> None:
    for block in range(start, stop, 1 << 20):
        out.write(view[block:min(block + (1 << 20), stop)])
