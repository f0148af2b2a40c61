"""Sparse input (issue 17, item 4): CSR/CSC X, scipy.sparse matrices and arrays.

The reference is the dense path on ``X.toarray()`` (the test densifies, never the code):
the same weights, losses and predictions to 1e-12 in float64. A spy makes any
densification by the code fail, and a matrix whose dense form would not fit in memory
trains and predicts.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from backprop.estimators import MLPClassifier, MLPRegressor
from backprop.network import MLP

FORMATS = [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array]


@pytest.fixture(scope="module")
def problem() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = sp.random(240, 60, density=0.05, random_state=1, format="csr", dtype=np.float64)
    y = rng.integers(0, 3, 240)
    Y = (rng.random((240, 4)) < 0.4).astype(int)
    return X, y, Y


@pytest.fixture
def no_densify(monkeypatch):  # type: ignore[no-untyped-def]
    """Any toarray/todense/__array__ on a scipy sparse object fails the test."""

    def refuse(self, *a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("X was densified")

    for cls in {type(f((1, 1))) for f in FORMATS} | {sp.coo_matrix, sp.coo_array}:
        for base in cls.__mro__:
            for name in ("toarray", "todense", "__array__"):
                if name in vars(base):
                    monkeypatch.setattr(base, name, refuse)


def _close(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    for x, z in zip(a, b, strict=True):
        np.testing.assert_allclose(x, z, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dropout", [False, True])
def test_engine_loss_and_grads_equal_dense(problem, fmt, dropout) -> None:  # type: ignore[no-untyped-def]
    X, y, _ = problem
    dense = X.toarray()
    net = MLP([60, 7, 5, 3], "tanh", dtype=np.float64, seed=0)
    masks = None
    if dropout:
        rng = np.random.default_rng(2)
        masks = [(rng.random(X.shape) < 0.8) / 0.8, None, None]
    J_d, g_d = net.loss_and_grads(dense, y, masks=masks)
    g_d = {k: v.copy() for k, v in g_d.items()}
    J_s, g_s = net.loss_and_grads(fmt(X), y, masks=masks)
    assert J_s == pytest.approx(J_d, rel=1e-12)
    _close(list(g_s.values()), list(g_d.values()))
    np.testing.assert_allclose(net.forward(fmt(X)), net.forward(dense), rtol=1e-12)


def test_engine_refuses_bad_sparse_input() -> None:
    net = MLP([3, 2, 2], dtype=np.float64)
    X = sp.csr_matrix(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        net.forward(X)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        net.forward(sp.csr_matrix((2, 4)))


def _quiet_fit(est, X, y, **kw):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


def test_estimators_equal_dense(problem) -> None:  # type: ignore[no-untyped-def]
    X, y, Y = problem
    dense = X.toarray()
    cases = [
        (MLPClassifier, y, {"solver": "adam"}),
        (MLPClassifier, y, {"solver": "sgd", "learning_rate": "adaptive"}),
        (MLPClassifier, y, {"solver": "lbfgs"}),
        (MLPClassifier, y, {"early_stopping": True}),
        (MLPClassifier, Y, {}),  # multilabel
        (MLPRegressor, Y.astype(float), {}),
    ]
    for cls, target, params in cases:
        kw = {"hidden_layer_sizes": (8,), "max_iter": 6, "random_state": 0, **params}
        ref = _quiet_fit(cls(**kw), dense, target)
        for fmt in FORMATS:
            est = _quiet_fit(cls(**kw), fmt(X), target)
            _close(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_)
            assert est.loss_curve_ == pytest.approx(ref.loss_curve_, rel=1e-12)
            np.testing.assert_allclose(est.predict(fmt(X)), ref.predict(dense), rtol=1e-12)
            if cls is MLPClassifier:
                np.testing.assert_allclose(
                    est.predict_proba(fmt(X)), ref.predict_proba(dense), rtol=1e-12
                )


def test_partial_fit_equal_dense(problem) -> None:  # type: ignore[no-untyped-def]
    X, y, _ = problem
    a = MLPClassifier((8,), random_state=0)
    b = MLPClassifier((8,), random_state=0)
    for _ in range(3):
        a.partial_fit(sp.csr_array(X), y, classes=[0, 1, 2])
        b.partial_fit(X.toarray(), y, classes=[0, 1, 2])
    _close(a.coefs_, b.coefs_)


def test_nothing_densifies_x(problem, no_densify) -> None:  # type: ignore[no-untyped-def]
    X, y, Y = problem
    for solver in ("adam", "lbfgs"):
        clf = _quiet_fit(MLPClassifier((8,), max_iter=3, solver=solver, random_state=0), X, y)
        clf.predict_proba(sp.csc_matrix(X))
    _quiet_fit(MLPClassifier((8,), max_iter=3, early_stopping=True, random_state=0), X, y)
    MLPClassifier((8,), random_state=0).partial_fit(X, y, classes=[0, 1, 2]).predict(X)
    _quiet_fit(MLPClassifier((8,), max_iter=2, random_state=0), sp.csc_array(X), Y).predict(X)


def test_spy_catches_densification(problem, no_densify) -> None:  # type: ignore[no-untyped-def]
    X, _, _ = problem
    with pytest.raises(AssertionError, match="densified"):
        X.toarray()


def test_too_large_to_densify_trains_and_predicts() -> None:
    """20,000 x 2,000,000 float64: 320 GB dense, a few MB as CSR."""
    n, d = 20_000, 2_000_000
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(n), 5)
    cols = rng.integers(0, d, rows.size)
    X = sp.csr_matrix((rng.random(rows.size), (rows, cols)), shape=(n, d))
    y = (cols[::5] % 2).astype(int)  # learnable from the first stored column
    clf = _quiet_fit(MLPClassifier((2,), max_iter=1, batch_size=2000, random_state=0), X, y)
    assert clf.coefs_[0].shape == (d, 2)
    assert clf.predict(X[:100]).shape == (100,)
