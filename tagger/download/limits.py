"""Limits that hold while a download runs: the bytes it takes and the audio it holds.

A site that tells a recording's length has it refused before anything is
downloaded. A server that does not (an internet radio, a direct link) is
watched while the bytes arrive: the download stops once it passes
``max_bytes``, or once the audio downloaded so far lasts longer than
``max_seconds``. That length is measured on the partial file by demuxing it
with PyAV (packet timestamps, no decoding), so it holds for any bitrate, VBR
included. It is measured at a few checkpoints only: when the download has
doubled since the last one, or sooner when the rate measured so far puts the
limit nearer, so even a two-hour limit costs a handful of quick passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tagger.errors import DownloadError
from tagger.units import clock

FIRST_CHECK_BYTES = 64 * 1024
CHECK_STEP = 1.05  # a checkpoint waits for at least 5 % more bytes than the last one
ENDLESS = "the site did not tell its length, so it may be an endless live stream"
ONLY_RECORDINGS = "only recordings can be tagged"


def size_text(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


def size_option(size: float) -> str:
    """A ``--max-size`` value at least ``size``: 2GB, 700MB."""
    return f"{math.ceil(size / 1e9)}GB" if size >= 1e9 else f"{math.ceil(size / 1e6)}MB"


def duration_option(seconds: float) -> str:
    """A ``--max-duration`` value at least ``seconds``: 3h, 20m."""
    return f"{math.ceil(seconds / 3600)}h" if seconds >= 3600 else f"{math.ceil(seconds / 60)}m"


def audio_seconds(path: Path) -> float | None:
    """How long the audio of a (partly downloaded) file lasts; ``None`` when PyAV cannot tell."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError):
        return None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        end: int | None = None
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    end = max(end or 0, packet.pts + (packet.duration or 0))
        except (av.error.FFmpegError, OSError):  # the cut-off end of the partial file
            pass
        if end is None or stream.time_base is None:
            return None
        return float((end - (stream.start_time or 0)) * stream.time_base)


@dataclass
class DownloadLimits:
    """Stops one download of ``source`` that passes a limit; ``None`` means no limit."""

    source: str
    max_bytes: int | None
    max_seconds: float | None
    next_check: int = FIRST_CHECK_BYTES

    def check(self, partial: Path | None, done: int, total: int | None) -> None:
        """Raise DownloadError once ``done`` bytes (of a declared ``total``) pass a limit."""
        if self.max_bytes and total and total > self.max_bytes:
            raise DownloadError(
                f"is {size_text(total)}, over the --max-size limit of "
                f"{size_text(self.max_bytes)}", self.source,
                f"pass --max-size {size_option(total)}, or 0 for no limit")
        if self.max_bytes and done > self.max_bytes:
            raise DownloadError(
                f"stopped the download at {size_text(self.max_bytes)}, the --max-size limit: "
                f"{ENDLESS}", self.source,
                f"{ONLY_RECORDINGS}; for a bigger one pass --max-size "
                f"{size_option(2 * self.max_bytes)}, or 0 for no limit")
        if self.max_seconds and partial is not None and done >= self.next_check:
            self._check_seconds(partial, done, self.max_seconds)

    def _check_seconds(self, partial: Path, done: int, max_seconds: float) -> None:
        seconds = audio_seconds(partial)
        if seconds is not None and seconds > max_seconds:
            raise DownloadError(
                f"stopped the download after {clock(seconds)} of audio, over the --max-duration "
                f"limit of {clock(max_seconds)}: {ENDLESS}", self.source,
                f"{ONLY_RECORDINGS}; for a longer one pass --max-duration "
                f"{duration_option(2 * max_seconds)}, or 0 for no limit")
        limit_bytes = done * max_seconds / seconds if seconds else 2 * done
        self.next_check = math.ceil(max(done * CHECK_STEP, min(2 * done, limit_bytes)))
