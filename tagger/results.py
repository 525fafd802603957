"""What tagging produces: a ``SongResult`` (genre) or an ``EmotionResult`` (emotion) per song,
which every renderer of its task takes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tagger.segments import (
    DEFAULT_MIN_SEGMENT_SECONDS,
    DEFAULT_SWITCH_PENALTY,
    Segment,
    Segmenter,
    mix_shares,
)


@dataclass(frozen=True)
class GenreShare:
    genre: str
    share_of_seconds: float
    mean_probability: float


@dataclass(frozen=True)
class SongGenre:
    """One of a song's genres: its mean probability over the audible seconds and the
    threshold that mean reached."""

    genre: str
    mean_probability: float
    threshold: float


@dataclass
class TimedResult:
    """Where each analysed second of a song lies.

    ``valid_seconds`` is how much real audio each second holds (less than a
    second only for the zero-padded last one); ``silent`` marks silent seconds.
    """

    source: str
    title: str
    model: str
    segment_seconds: float
    valid_seconds: np.ndarray
    silent: np.ndarray

    @property
    def n_seconds(self) -> int:
        return len(self.valid_seconds)

    @property
    def duration(self) -> float:
        return float(self.valid_seconds.sum())

    @property
    def partial(self) -> np.ndarray:
        return self.valid_seconds < self.segment_seconds - 1e-9

    @property
    def starts(self) -> np.ndarray:
        return np.arange(self.n_seconds) * self.segment_seconds

    @property
    def ends(self) -> np.ndarray:
        return self.starts + self.valid_seconds


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities ``(S, classes)`` of logits ``(S, classes)`` divided by ``temperature``,
    in the logits' precision."""
    scaled = logits / temperature
    exponentials = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def familiarity(logits: np.ndarray) -> float | None:
    """How well a song's music fits the genres a model knows: the log-sum-exp of its mean
    logits over the audible seconds (``logits``; None when there are none). A song unlike
    every genre gets low logits for all of them, whichever one wins."""
    return float(np.logaddexp.reduce(logits.mean(axis=0))) if len(logits) else None


def check_smoothing_window(seconds: int) -> None:
    """Raise ValueError unless ``seconds`` is 0 (no smoothing) or a positive odd number."""
    if seconds < 0 or (seconds and seconds % 2 == 0):
        raise ValueError(f"smoothing must be 0 (off) or an odd number of seconds (3, 5, 7, ...) "
                         f"so the window is centred on each second, not {seconds}")


def smooth_probabilities(probabilities: np.ndarray, silent: np.ndarray,
                         window_seconds: int) -> np.ndarray:
    """Each audible second's probabilities averaged over a centred window of ``window_seconds``
    (odd; 0 or 1: unchanged), cut short at the song's ends.

    Silent seconds inside a window are left out of its mean, and silent rows stay zeros.
    Returns a new array; ``probabilities`` is ``(seconds, classes)``.
    """
    check_smoothing_window(window_seconds)
    if window_seconds <= 1:
        return probabilities.copy()
    audible = ~silent
    n_seconds, half = len(probabilities), window_seconds // 2
    sums = np.concatenate([np.zeros((1, probabilities.shape[1])),
                           np.cumsum(probabilities * audible[:, None], axis=0)])
    counts = np.concatenate([[0], np.cumsum(audible)])
    first = np.clip(np.arange(n_seconds) - half, 0, n_seconds)
    after_last = np.clip(np.arange(n_seconds) + half + 1, 0, n_seconds)
    window_counts = counts[after_last] - counts[first]
    smoothed = np.zeros_like(probabilities)
    smoothed[audible] = ((sums[after_last] - sums[first])[audible]
                         / window_counts[audible, None])
    return smoothed


@dataclass
class SongResult(TimedResult):
    """Per-second genre probabilities of one song: ``probabilities`` is ``(seconds, classes)``;
    rows of silent seconds are zeros and carry no winner.

    ``uncertain_below`` is the threshold of the uncertain state (0: off),
    ``smooth_seconds`` the smoothing window the probabilities went through (0: none),
    ``min_segment_seconds`` and ``switch_penalty`` the settings of its segments,
    ``thresholds`` each class's threshold of the song's genres (the model card's
    ``song_genres``; None: the model gives a song one genre, see ``song_genres``),
    ``familiarity`` the song's (``familiarity``) and ``familiarity_below`` the card's
    level under which its music is unlike every genre, so it gets none (None: no test).
    """

    classes: list[str]
    probabilities: np.ndarray
    uncertain_below: float = 0.0
    thresholds: dict[str, float] | None = None
    familiarity: float | None = None
    familiarity_below: float | None = None
    smooth_seconds: int = 0
    min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS
    switch_penalty: float = DEFAULT_SWITCH_PENALTY

    @cached_property
    def segments(self) -> list[Segment]:
        """The song's genre segments (``tagger.segments``), silent ones included."""
        segmenter = Segmenter(self.segment_seconds, self.min_segment_seconds,
                              self.switch_penalty)
        return segmenter.genre_segments(self.probabilities, self.silent, self.classes,
                                        self.starts, self.ends, self.uncertain_below)

    def mixed(self) -> list[tuple[str, float]]:
        """Each genre's share of the time of the clear segments when the song has several
        of different genres (a mix); empty for a song of one genre."""
        return mix_shares(self.segments)

    def winners(self) -> list[str | None]:
        """The winning genre of every second, or None for a silent one."""
        best = self.probabilities.argmax(axis=1)
        return [None if s else self.classes[b] for b, s in zip(best, self.silent, strict=True)]

    @property
    def uncertain(self) -> np.ndarray:
        """Which seconds have no clear genre: audible, with a top probability below
        ``uncertain_below``. Their winner is still the top genre."""
        return ~self.silent & (self.probabilities.max(axis=1) < self.uncertain_below)

    def uncertain_share(self) -> float:
        """The share of audible seconds that are uncertain."""
        return float(self.uncertain.sum() / max(1, int((~self.silent).sum())))

    def song_genre(self) -> str:
        """The genre with the highest mean probability over the audible seconds."""
        return self.classes[int(self.mean_probabilities().argmax())]

    def mean_probabilities(self) -> np.ndarray:
        return self.probabilities[~self.silent].mean(axis=0)

    def song_genres(self) -> list[SongGenre]:
        """The song's genres, highest mean probability first; none for a silent, unfamiliar
        or uncertain song (``no_genre_reason``).

        With ``thresholds``: every class whose mean probability reaches its own threshold.
        Without: the top genre (``song_genre``), unless its mean is below
        ``uncertain_below``.
        """
        if bool(self.silent.all()) or self.unfamiliar:
            return []
        means = self.mean_probabilities()
        if self.thresholds is None:
            top = int(means.argmax())
            mean = float(means[top])
            return ([SongGenre(self.classes[top], mean, self.uncertain_below)]
                    if mean >= self.uncertain_below else [])
        reached = [SongGenre(genre, float(mean), self.thresholds[genre])
                   for genre, mean in zip(self.classes, means, strict=True)
                   if mean >= self.thresholds[genre]]
        return sorted(reached, key=lambda found: -found.mean_probability)

    @property
    def unfamiliar(self) -> bool:
        """Whether the song's music is unlike every genre of the model (its familiarity is
        below the card's level)."""
        return (self.familiarity_below is not None and self.familiarity is not None
                and self.familiarity < self.familiarity_below)

    def no_genre_reason(self) -> str | None:
        """Why the song has no genres (``silent``, ``unfamiliar`` or ``uncertain``); None
        when it has some."""
        if bool(self.silent.all()):
            return "silent"
        if self.unfamiliar:
            return "unfamiliar"
        return None if self.song_genres() else "uncertain"

    def summary(self, top: int | None = None) -> list[GenreShare]:
        """Genres by share of audible seconds won, then by mean probability."""
        audible = ~self.silent
        counts = np.bincount(self.probabilities[audible].argmax(axis=1),
                             minlength=len(self.classes))
        shares = counts / max(1, int(audible.sum()))
        means = self.mean_probabilities()
        order = sorted(range(len(self.classes)), key=lambda i: (-shares[i], -means[i]))
        ranked = [GenreShare(self.classes[i], float(shares[i]), float(means[i])) for i in order]
        return ranked[:top] if top else ranked


@dataclass
class EmotionResult(TimedResult):
    """Per-second values (0-1) of each target for one song: ``values`` is
    ``(seconds, targets)``; rows of silent seconds are NaN and count for nothing."""

    targets: list[str]
    values: np.ndarray

    def song_values(self) -> dict[str, float]:
        """Each target's song value: the mean over the audible seconds (as the model was scored)."""
        means = self.values[~self.silent].mean(axis=0)
        return {target: float(v) for target, v in zip(self.targets, means, strict=True)}
