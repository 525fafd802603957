"""The one exception family that every expected failure raises.

The CLI prints ``str(error)`` as a single line and exits non-zero; anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class TaggerError(Exception):
    """An expected failure, with the file or URL it concerns and a hint."""

    def __init__(self, what: str, source: str | None = None, hint: str | None = None) -> None:
        self.what = what
        self.source = source
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.source}: {self.what}" if self.source else self.what
        return f"{text} ({self.hint})" if self.hint else text


class AudioError(TaggerError):
    """The input could not be read as usable audio."""


class SilentAudioError(AudioError):
    """The input decodes, but holds nothing but digital silence."""


class DownloadError(TaggerError):
    """A URL could not be fetched."""


class ModelError(TaggerError):
    """A checkpoint is missing, unreadable, tampered with or inconsistent."""


class OutputError(TaggerError):
    """An output file could not be written."""


class DatasetError(TaggerError):
    """A training data folder is missing something or is laid out wrongly."""


class TaggerWarning(UserWarning):
    """A problem a run worked around, as one line naming the file: the CLI prints it and
    goes on."""


class DamagedAudioWarning(TaggerWarning):
    """Some samples were NaN, infinite or impossibly large: they were muted and their
    seconds left out."""


class CacheRepairedWarning(TaggerWarning):
    """A damaged cache was repaired: a file in the folder's place moved aside, or an index
    rebuilt."""
