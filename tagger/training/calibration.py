"""Temperature calibration: make a top probability of 0.8 right about 80 % of the time.

One temperature ``T`` divides the logits before the softmax (Guo et al. 2017);
it is fitted on held-out seconds by minimising the negative log-likelihood,
so the predicted genres never change, only how sure the model says it is.
The expected calibration error (ECE) is the mean gap, weighted by seconds,
between confidence and accuracy in bins of confidence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tagger.results import softmax


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    probabilities = softmax(logits.astype(np.float64), temperature)
    return float(-np.log(np.maximum(probabilities[np.arange(len(labels)), labels], 1e-12)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises the NLL (a log grid, then a finer one)."""
    grid = np.geomspace(0.05, 20.0, 121)
    best = min(grid, key=lambda t: negative_log_likelihood(logits, labels, t))
    fine = np.geomspace(best / 1.06, best * 1.06, 41)
    return float(min(fine, key=lambda t: negative_log_likelihood(logits, labels, t)))


def reliability(probabilities: np.ndarray, labels: np.ndarray,
                bins: int = 10) -> list[dict[str, float]]:
    """Per confidence bin: its range, seconds, mean confidence and accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        members = which == b
        if members.any():
            rows.append({"low": round(float(edges[b]), 2), "high": round(float(edges[b + 1]), 2),
                         "seconds": int(members.sum()),
                         "confidence": round(float(confidence[members].mean()), 4),
                         "accuracy": round(float(correct[members].mean()), 4)})
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = 15) -> float:
    table = reliability(probabilities, labels, bins)
    total = sum(row["seconds"] for row in table)
    return float(sum(row["seconds"] * abs(row["confidence"] - row["accuracy"])
                     for row in table) / max(1, total))


def calibrate(logits: np.ndarray, labels: np.ndarray, uncertain_below: float) -> dict[str, Any]:
    """Fit the temperature on held-out seconds; report ECE before and after, and what the
    ``uncertain_below`` threshold does to those seconds."""
    temperature = fit_temperature(logits, labels)
    before, after = softmax(logits), softmax(logits, temperature)
    confident = after.max(axis=1) >= uncertain_below
    correct = after.argmax(axis=1) == labels
    return {
        "temperature": round(temperature, 4),
        "uncertain_below": uncertain_below,
        "seconds": len(labels),
        "ece_before": round(expected_calibration_error(before, labels), 4),
        "ece_after": round(expected_calibration_error(after, labels), 4),
        "nll_before": round(negative_log_likelihood(logits, labels, 1.0), 4),
        "nll_after": round(negative_log_likelihood(logits, labels, temperature), 4),
        "uncertain_share": round(float(1 - confident.mean()), 4),
        "accuracy_of_confident": round(float(correct[confident].mean()), 4)
        if confident.any() else None,
        "accuracy_of_uncertain": round(float(correct[~confident].mean()), 4)
        if (~confident).any() else None,
        "reliability": reliability(after, labels),
    }
