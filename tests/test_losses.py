"""Losses: hand values, gradients against finite differences, stability, scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop.gradcheck import numerical_gradient, relative_error
from backprop.losses import softmax, softmax_cross_entropy, squared_error

RNG = np.random.default_rng(0)


def test_cross_entropy_by_hand() -> None:
    # scores [0, ln 3] -> p = [1/4, 3/4]; y = 0: J = ln 4, dJ/ds = p - e_0 = [-3/4, 3/4]
    # scores [0, 0]    -> p = [1/2, 1/2]; y = 1: J = ln 2, dJ/ds = [1/2, -1/2]
    # mean over n = 2: J = (ln 4 + ln 2) / 2, each gradient row divided by 2
    S = np.array([[0.0, math.log(3.0)], [0.0, 0.0]])
    J, dS = softmax_cross_entropy(S, np.array([0, 1]))
    assert J == pytest.approx((math.log(4) + math.log(2)) / 2, abs=1e-15)
    np.testing.assert_allclose(dS, [[-3 / 8, 3 / 8], [1 / 4, -1 / 4]], atol=1e-15)


def test_squared_error_by_hand() -> None:
    # outputs [[1, 2], [0, 0]], targets [[0, 0], [1, -1]]
    # per-example ||o - y||^2 = 1 + 4 = 5 and 1 + 1 = 2; J = (5 + 2) / (2 * 2) = 7/4
    # dJ/dO = (O - Y) / n = [[1, 2], [-1, 1]] / 2
    O = np.array([[1.0, 2.0], [0.0, 0.0]])
    Y = np.array([[0.0, 0.0], [1.0, -1.0]])
    J, dO = squared_error(O, Y)
    assert J == pytest.approx(7 / 4, abs=1e-15)
    np.testing.assert_allclose(dO, [[0.5, 1.0], [-0.5, 0.5]], atol=1e-15)


@pytest.mark.parametrize("weighted", [False, True])
def test_gradients_match_finite_differences(weighted: bool) -> None:
    """Loss and gradient are scaled the same way, one output or many, weighted or not."""
    w = RNG.uniform(0.1, 2.0, size=6) if weighted else None
    S = RNG.normal(size=(6, 4))
    labels = RNG.integers(0, 4, 6)
    Y = RNG.normal(size=(6, 4))
    for loss, target in ((softmax_cross_entropy, labels), (squared_error, Y)):
        _, grad = loss(S.copy(), target, sample_weight=w)
        numeric = numerical_gradient(
            lambda loss=loss, target=target: loss(S.copy(), target, sample_weight=w)[0], S
        )
        assert relative_error(grad, numeric) <= 1e-9, loss.__name__


def test_out_may_alias_the_scores() -> None:
    S = RNG.normal(size=(5, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1])
    J, expected = softmax_cross_entropy(S.copy(), y)
    J2, dS = softmax_cross_entropy(S, y, out=S)
    assert dS is S and dS.dtype == np.float32
    assert J == J2
    np.testing.assert_array_equal(dS, expected)


def test_softmax_stable_for_huge_scores() -> None:
    S = np.array([[1000.0, -1000.0, 0.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = softmax(S)
        J, dS = softmax_cross_entropy(S.copy(), np.array([1]))
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0]])
    assert J == pytest.approx(2000.0)
    assert np.isfinite(dS).all()
