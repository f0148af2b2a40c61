"""Losses: hand values, gradients against finite differences, stability, scaling."""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pytest

from backprop.gradcheck import numerical_gradient, relative_error
from backprop.losses import (
    LOSSES,
    PREDICTIONS,
    half_poisson_deviance,
    softmax,
    softmax_cross_entropy,
    squared_error,
)

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
    counts = RNG.poisson(2.0, size=(6, 4)).astype(float)  # zeros included
    for loss, target in (
        (softmax_cross_entropy, labels),
        (squared_error, Y),
        (half_poisson_deviance, counts),
    ):
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


def test_poisson_by_hand() -> None:
    # log-means [[0], [ln 2]] -> mu = [1, 2]; y = [0, 3]
    # d(0, 1) = mu = 1;  d(3, 2) = (2 - 3) - 3 (ln 2 - ln 3) = -1 + 3 ln 1.5
    # J = (1 - 1 + 3 ln 1.5) / 2;  dJ/ds = (mu - y) / n = [1, -1] / 2
    S = np.array([[0.0], [math.log(2.0)]])
    J, dS = half_poisson_deviance(S, np.array([[0.0], [3.0]]))
    assert J == pytest.approx(1.5 * math.log(1.5), abs=1e-15)
    np.testing.assert_allclose(dS, [[0.5], [-0.5]], atol=1e-15)


def test_poisson_is_scikit_learns_half_deviance() -> None:
    """The value scikit-learn's MLPRegressor(loss="poisson") reports, weights included."""
    from sklearn.neural_network._base import poisson_loss

    S = RNG.normal(size=(7, 2))
    Y = RNG.poisson(1.5, size=(7, 2)).astype(float)
    w = RNG.uniform(0.1, 2.0, size=7)
    for weights in (None, w):
        J, _ = half_poisson_deviance(S.copy(), Y, sample_weight=weights)
        assert J == pytest.approx(poisson_loss(Y, np.exp(S), weights), rel=1e-12)


def test_poisson_matches_torch(torch: ModuleType) -> None:
    """PyTorch's PoissonNLLLoss(log_input=True) is e^s - y s: ours minus the constant
    y log y - y, with the same gradient (autograd) in float32 and float64."""
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        S = RNG.normal(size=(9, 3)).astype(dtype)
        Y = RNG.poisson(2.0, size=(9, 3)).astype(dtype)
        J, dS = half_poisson_deviance(S.copy(), Y)
        s = torch.tensor(S, requires_grad=True)
        nll = torch.nn.PoissonNLLLoss(log_input=True, reduction="sum")(s, torch.tensor(Y)) / 9
        nll.backward()
        y64 = Y.astype(np.float64)
        constant = float(np.sum(np.where(y64 > 0, y64 * np.log(np.maximum(y64, 1)), 0) - y64))
        assert J == pytest.approx(float(nll.detach()) + constant / 9, rel=tol)
        np.testing.assert_allclose(dS, s.grad.numpy(), rtol=tol, atol=tol)


def test_poisson_stable_and_aliasing() -> None:
    """Log-means of -104 and 80 in float32 (e^-104 underflows to 0, e^80 is near the
    largest float32):
    finite loss and gradient, no warning; ``out`` may be the scores."""
    S = np.array([[-104.0, 80.0], [-104.0, 0.0]], dtype=np.float32)
    Y = np.array([[5.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        expected = half_poisson_deviance(S.copy(), Y)
        J, dS = half_poisson_deviance(S, Y, out=S)
    assert dS is S and dS.dtype == np.float32
    assert J == expected[0] and math.isfinite(J)
    np.testing.assert_array_equal(dS, expected[1])
    # y = 5 at mu = 0: 5 (log 5 - s) - 5, never log(5 / 0); y = 0 at e^80: e^80; y = 2 at
    # mu = 1: -1 + 2 log 2.
    terms = 5 * (math.log(5) + 104) - 5 + math.exp(80) - 1 + 2 * math.log(2)
    assert pytest.approx(terms / 2, rel=1e-5) == J


def test_every_loss_has_a_prediction() -> None:
    """A network predicts through its loss's inverse link: e^s for Poisson, the scores
    for the squared error, probabilities for the cross-entropies."""
    assert set(PREDICTIONS) == set(LOSSES)
    S = np.array([[0.0, math.log(3.0)]])
    np.testing.assert_allclose(PREDICTIONS["poisson"](S), [[1.0, 3.0]])
    np.testing.assert_array_equal(PREDICTIONS["squared_error"](S), S)
    np.testing.assert_allclose(PREDICTIONS["softmax_cross_entropy"](S), [[0.25, 0.75]])
