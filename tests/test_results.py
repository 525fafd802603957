from __future__ import annotations

import numpy as np
import pytest

from tagger.results import SongResult, smooth_probabilities

# Five seconds, two classes; the third second is silent.
PROBABILITIES = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.5, 0.5]])
SILENT = np.array([False, False, True, False, False])


def test_smoothing_averages_a_centred_window_of_audible_seconds() -> None:
    smoothed = smooth_probabilities(PROBABILITIES, SILENT, 3)
    expected = [[0.5, 0.5],     # seconds 0-1 (the window is cut short at the start)
                [0.5, 0.5],     # seconds 0-2, the silent one left out
                [0.0, 0.0],     # silent: stays silent
                [0.75, 0.25],   # seconds 2-4, the silent one left out
                [0.75, 0.25]]   # seconds 3-4 (cut short at the end)
    np.testing.assert_allclose(smoothed, expected)
    np.testing.assert_allclose(smoothed[~SILENT].sum(axis=1), 1.0)


def test_a_window_wider_than_the_song_gives_every_audible_second_the_song_mean() -> None:
    smoothed = smooth_probabilities(PROBABILITIES, SILENT, 11)
    np.testing.assert_allclose(smoothed[~SILENT], [[0.625, 0.375]] * 4)
    np.testing.assert_array_equal(smoothed[2], [0.0, 0.0])


@pytest.mark.parametrize("window", [0, 1])
def test_no_smoothing_returns_an_equal_copy(window: int) -> None:
    smoothed = smooth_probabilities(PROBABILITIES, SILENT, window)
    np.testing.assert_array_equal(smoothed, PROBABILITIES)
    assert smoothed is not PROBABILITIES


def test_smoothing_leaves_its_input_alone_and_keeps_the_dtype() -> None:
    probabilities = PROBABILITIES.astype(np.float32)
    smoothed = smooth_probabilities(probabilities, SILENT, 5)
    np.testing.assert_array_equal(probabilities, PROBABILITIES.astype(np.float32))
    assert smoothed.dtype == np.float32


@pytest.mark.parametrize("window", [2, 4, -1, -3])
def test_even_or_negative_windows_are_refused(window: int) -> None:
    with pytest.raises(ValueError, match="odd number of seconds"):
        smooth_probabilities(PROBABILITIES, SILENT, window)


def result_with_threshold(threshold: float) -> SongResult:
    return SongResult(source="s.mp3", title="s", model="m", segment_seconds=1.0,
                      valid_seconds=np.ones(5), silent=SILENT, classes=["a", "b"],
                      probabilities=PROBABILITIES, uncertain_below=threshold)


def test_uncertain_seconds_are_audible_ones_with_a_low_top_probability() -> None:
    result = result_with_threshold(0.6)
    assert result.uncertain.tolist() == [False, False, False, False, True]
    assert result.uncertain_share() == pytest.approx(1 / 4)
    assert result.winners()[4] == "a"  # an uncertain second keeps its top genre
    assert result_with_threshold(0.0).uncertain.sum() == 0
    assert result_with_threshold(1.0).uncertain.tolist() == [False, False, False, False, True]
    assert result_with_threshold(0.0).song_genre() == result_with_threshold(0.6).song_genre()
