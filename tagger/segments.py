"""Segments of a long recording: stretches of one genre, found by a sequence model over
the per-second probabilities rather than by thresholding single seconds.

The model is a hidden semi-Markov chain decoded exactly (Viterbi): each state
is a genre, or the *uncertain* state; a second's score in a genre state is
``log(p + 0.1)`` of its calibrated probability ``p`` (the 0.1 bounds what one
wrong second can cost, so flicker cannot outweigh a stretch), and in the
uncertain state the same of the uncertain threshold, so stretches where no
genre reaches the threshold are better explained as uncertain. Every switch of
state costs ``switch_penalty`` (in the same log units) and every segment lasts
at least ``min_segment_seconds`` (a shorter recording is one segment).

Silence is handled before decoding: a run of at least ``MIN_SILENCE_SECONDS``
silent seconds is a segment of its own (genre None) and the audio either side
is decoded apart; shorter silent runs carry no evidence (the same score in
every state) and join the segment around them. Decoding takes O(seconds x
states) time and memory, whatever the minimum length: multi-hour recordings
cost a few megabytes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

DEFAULT_MIN_SEGMENT_SECONDS = 10.0
DEFAULT_SWITCH_PENALTY = 8.0
MIN_SILENCE_SECONDS = 2.0
ROBUST_EPSILON = 0.1  # added to every probability before its log


@dataclass(frozen=True)
class Segment:
    """A stretch of a recording, from ``start`` to ``end`` seconds: its ``label`` (a genre)
    is None for silence; ``mean_probability`` is the mean probability of that genre
    over its audible seconds; ``uncertain`` when that has no clear winner."""

    start: float
    end: float
    label: str | None
    mean_probability: float | None
    uncertain: bool = False

    @property
    def silent(self) -> bool:
        return self.label is None

    @property
    def duration(self) -> float:
        return self.end - self.start


def steps_for(seconds: float, step_seconds: float) -> int:
    """How many steps of ``step_seconds`` last at least ``seconds`` (at least one)."""
    return max(1, math.ceil(seconds / step_seconds - 1e-9))


def decode_states(scores: np.ndarray, switch_penalty: float, min_steps: int) -> np.ndarray:
    """The best state of every step of ``scores`` (``(steps, states)``, log-likelihoods):
    the labelling that maximises the summed scores minus ``switch_penalty`` per change
    of state, in runs of at least ``min_steps`` steps (all steps one state when there
    are fewer).

    A segment-level Viterbi: ``best[t, k]`` is the best labelling of the first ``t``
    steps whose last run is state ``k``; a run of ``k`` from ``s`` to ``t`` adds
    ``cumulative[t, k] - cumulative[s, k]``, so the best start before ``t - min_steps``
    is a running maximum, kept per state.
    """
    n_steps, n_states = scores.shape
    if n_steps == 0:
        return np.zeros(0, dtype=np.int64)
    min_steps = min(max(1, min_steps), n_steps)
    cumulative = np.vstack([np.zeros(n_states), np.cumsum(scores, axis=0)])
    best = np.full((n_steps + 1, n_states), -np.inf)
    # What a run of state k started at step s is worth before its own scores: 0 at the
    # start, else the best labelling ending at s in another state, less the penalty.
    opening = np.full((n_steps + 1, n_states), -np.inf)
    opening[0] = 0.0
    previous_state = np.zeros((n_steps + 1, n_states), dtype=np.int16)
    run_start = np.zeros((n_steps + 1, n_states), dtype=np.int64)  # argmax of the running max
    running = np.full(n_states, -np.inf)
    running_start = np.zeros(n_states, dtype=np.int64)
    states = np.arange(n_states)
    for t in range(min_steps, n_steps + 1):
        s = t - min_steps
        candidate = opening[s] - cumulative[s]
        better = candidate > running
        running = np.where(better, candidate, running)
        running_start = np.where(better, s, running_start)
        best[t] = running + cumulative[t]
        run_start[t] = running_start
        if n_states > 1:  # the best other state to switch from, for each state
            order = np.argsort(best[t])[::-1]
            first, second = order[0], order[1]
            source = np.where(states == first, second, first)
            opening[t] = best[t][source] - switch_penalty
            previous_state[t] = source
    labels = np.empty(n_steps, dtype=np.int64)
    t, state = n_steps, int(np.argmax(best[n_steps]))
    while t > 0:
        start = int(run_start[t, state])
        labels[start:t] = state
        t, state = start, int(previous_state[start, state])
    return labels


def runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """The ``(first, after_last)`` steps of each run of equal values in ``labels``."""
    if len(labels) == 0:
        return []
    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    edges = [0, *changes.tolist(), len(labels)]
    return list(itertools.pairwise(edges))


def audible_stretches(silent: np.ndarray, min_silent_steps: int) -> list[tuple[int, int, bool]]:
    """The recording cut at every run of at least ``min_silent_steps`` silent steps:
    ``(first, after_last, is_silence)``, in order."""
    long_silence = np.zeros(len(silent), dtype=bool)
    for first, after in runs(silent):
        if silent[first] and after - first >= min_silent_steps:
            long_silence[first:after] = True
    return [(first, after, bool(long_silence[first])) for first, after in runs(long_silence)]


@dataclass(frozen=True)
class Segmenter:
    """The settings of one segmentation: the minimum length of a segment and the cost of
    a switch, with the length of one step (a second) of the outputs."""

    step_seconds: float = 1.0
    min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS
    switch_penalty: float = DEFAULT_SWITCH_PENALTY

    def __post_init__(self) -> None:
        if self.min_segment_seconds < 0 or not math.isfinite(self.min_segment_seconds):
            raise ValueError(f"the minimum segment length must be 0 or more seconds, not "
                             f"{self.min_segment_seconds}")
        if self.switch_penalty < 0 or not math.isfinite(self.switch_penalty):
            raise ValueError(f"the switching penalty must be 0 or more, not "
                             f"{self.switch_penalty}")

    def state_runs(self, scores: np.ndarray, silent: np.ndarray) -> list[tuple[int, int, int]]:
        """``(first, after_last, state)`` of every segment; state -1 is silence. Silent
        steps inside an audible stretch score 0 in every state."""
        min_steps = steps_for(self.min_segment_seconds, self.step_seconds)
        min_silent = steps_for(MIN_SILENCE_SECONDS, self.step_seconds)
        found: list[tuple[int, int, int]] = []
        for first, after, is_silence in audible_stretches(silent, min_silent):
            if is_silence:
                found.append((first, after, -1))
                continue
            stretch = np.where(silent[first:after, None], 0.0, scores[first:after])
            labels = decode_states(stretch, self.switch_penalty, min_steps)
            found += [(first + a, first + b, int(labels[a])) for a, b in runs(labels)]
        return found

    def genre_segments(self, probabilities: np.ndarray, silent: np.ndarray,
                       classes: list[str], starts: np.ndarray, ends: np.ndarray,
                       uncertain_below: float) -> list[Segment]:
        """The genre segments of a song's per-second ``probabilities`` (rows of silent
        seconds ignored). With ``uncertain_below`` above 0 the uncertain state scores
        its log; an uncertain segment is named by its top mean genre. A segment is
        uncertain when it was decoded so or its genre's mean is below the threshold."""
        scores = np.log(probabilities + ROBUST_EPSILON)
        uncertain_state = len(classes) if uncertain_below > 0 else None
        if uncertain_state is not None:
            level = math.log(uncertain_below + ROBUST_EPSILON)
            scores = np.hstack([scores, np.full((len(scores), 1), level)])
        segments = []
        for first, after, state in self.state_runs(scores, silent):
            start, end = float(starts[first]), float(ends[after - 1])
            if state < 0:
                segments.append(Segment(start, end, None, None))
                continue
            audible = probabilities[first:after][~silent[first:after]]
            means = audible.mean(axis=0) if len(audible) else np.zeros(len(classes))
            genre = int(np.argmax(means)) if state == uncertain_state else state
            uncertain = state == uncertain_state or bool(means[genre] < uncertain_below)
            segments.append(Segment(start, end, classes[genre], float(means[genre]), uncertain))
        return segments


def mix_shares(segments: list[Segment]) -> list[tuple[str, float]]:
    """For a recording of several clear segments of different genres: each genre's share
    of the time of the clear segments, largest first; empty otherwise."""
    clear = [s for s in segments if not s.silent and not s.uncertain]
    genres = {s.label for s in clear}
    if len(clear) < 2 or len(genres) < 2:
        return []
    total = sum(s.duration for s in clear)
    shares = {genre: sum(s.duration for s in clear if s.label == genre) / total
              for genre in genres}
    return sorted(((g, share) for g, share in shares.items() if g is not None),
                  key=lambda item: (-item[1], item[0]))
