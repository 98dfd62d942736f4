"""Tests of retrieval.calibrate: the logistic fit and the threshold choice."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.calibrate import best_threshold, fit_logistic


def test_logistic_fit_separates_and_applies_to_raw_features():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(5.0, 1.0, (200, 1)), rng.normal(1.0, 1.0, (200, 1))])
    y = np.array([1.0] * 200 + [0.0] * 200)
    w = fit_logistic(x, y, l2=0.01)
    logits = x[:, 0] * w[0] + w[1]
    assert w[0] > 0
    # The boundary sits half-way between the two means, on the raw scale.
    assert -w[1] / w[0] == pytest.approx(3.0, abs=0.3)
    assert ((logits > 0) == (y == 1)).mean() > 0.95


def test_threshold_balances_answering_and_refusing():
    answerable = [0.9, 0.8, 0.7, 0.6, 0.2]
    unanswerable = [0.1, 0.3, 0.4, 0.65, 0.05]
    t = best_threshold(answerable, unanswerable)
    answered = np.mean([s >= t for s in answerable])
    refused = np.mean([s < t for s in unanswerable])
    assert min(answered, refused) == 0.8
