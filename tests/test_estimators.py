"""Tests for the scikit-learn compatible estimators (`backprop.estimators`).

References are independent of our code: scikit-learn's own estimator checks, its own
``MLPClassifier``/``MLPRegressor`` (same weights must give the same outputs; the same
SGD step from the same weights must give the same new weights and loss), and loss values
worked out with plain NumPy from the definitions.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from backprop.estimators import MLPClassifier, MLPRegressor
from backprop.network import MLP
from backprop.trainer import Trainer, TrainingDiverged

# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_regression(120, 5, n_targets=3, noise=0.1, random_state=0)
    return X, y / y.std(0)


def _quiet(fn, *args, **kw):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kw)


# --------------------------------------------------------------------------- scikit-learn's checks

# Every check of scikit-learn 1.9 runs and passes; nothing is listed in
# expected_failed_checks. In this environment pytest reports 6 of them as skipped by
# scikit-learn itself, not by us: 4 x check_array_api_input (needs SCIPY_ARRAY_API=1 and
# an array API library; the estimators are NumPy-only and do not claim array API
# support) and 2 x check_classifiers_multilabel_output_format_decision_function (no
# decision_function, as scikit-learn's MLPClassifier). The classifier declares
# multi_label as scikit-learn's does, so the other multilabel checks run.
# Small, fast settings: the checks fit a few hundred times (whole run ~4 s).


@parametrize_with_checks(
    [
        MLPClassifier((8,), max_iter=60, learning_rate_init=0.05, random_state=0),
        MLPRegressor((8,), max_iter=60, learning_rate_init=0.05, random_state=0),
        MLPClassifier((8,), solver="lbfgs", max_iter=60, random_state=0),
        MLPRegressor((8,), solver="lbfgs", max_iter=60, random_state=0),
    ]
)
def test_sklearn_estimator_checks(estimator, check) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# --------------------------------------------------------------------------- composition


def test_pipeline_and_grid_search_classifier(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = load_iris(return_X_y=True)  # raw: the pipeline standardises
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier(max_iter=150, learning_rate_init=0.02, random_state=0)
    )
    grid = GridSearchCV(
        pipe,
        {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)], "mlpclassifier__alpha": [1e-4, 1.0]},
        cv=3,
    )
    _quiet(grid.fit, X, y)
    assert set(grid.cv_results_["params"][0]) == {
        "mlpclassifier__hidden_layer_sizes",
        "mlpclassifier__alpha",
    }
    assert len(grid.cv_results_["mean_test_score"]) == 4
    assert grid.best_score_ > 0.9
    assert grid.best_estimator_.predict_proba(X).shape == (150, 3)


def test_pipeline_and_grid_search_regressor(regression) -> None:  # type: ignore[no-untyped-def]
    X, y = regression
    pipe = make_pipeline(
        StandardScaler(), MLPRegressor(max_iter=200, learning_rate_init=0.01, random_state=0)
    )
    grid = GridSearchCV(
        pipe,
        {"mlpregressor__hidden_layer_sizes": [(8,), (32,)], "mlpregressor__alpha": [1e-4, 0.1]},
        cv=3,
    )
    _quiet(grid.fit, X, y)
    assert grid.best_score_ > 0.9  # R^2 on held-out folds, three targets
    scores = _quiet(cross_val_score, grid.best_estimator_, X, y[:, 0], cv=3)
    assert scores.min() > 0.9


# ------------------------------------------------------------- same weights, same outputs


def _ours_with_sklearn_weights(ours, sk):  # type: ignore[no-untyped-def]
    ours.coefs_ = [c.copy() for c in sk.coefs_]
    ours.intercepts_ = [b.copy() for b in sk.intercepts_]
    return ours


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_sklearn_classifier_weights_give_same_proba(iris, activation) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    sk = _quiet(
        SkMLPClassifier((7, 5), activation=activation, max_iter=50, random_state=0).fit, X, y
    )
    ours = _quiet(MLPClassifier((7, 5), activation=activation, max_iter=1).fit, X, y)
    _ours_with_sklearn_weights(ours, sk)
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    np.testing.assert_allclose(
        ours.predict_log_proba(X), sk.predict_log_proba(X), rtol=1e-6, atol=1e-9
    )
    assert ours.score(X, y) == sk.score(X, y)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_binary_classifier_has_sklearns_one_logistic_column(iris, solver) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    yb = np.where(y == 2, "virginica", "other")
    kw = {"solver": solver, "max_iter": 300, "learning_rate_init": 0.01, "random_state": 0}
    sk = _quiet(SkMLPClassifier((6,), **kw).fit, X, yb)
    ours = _quiet(MLPClassifier((6,), **kw).fit, X, yb)
    # scikit-learn's attribute shapes, so code that reads coefs_ keeps working.
    assert ours.coefs_[-1].shape == sk.coefs_[-1].shape == (6, 1)
    assert ours.intercepts_[-1].shape == sk.intercepts_[-1].shape == (1,)
    assert ours.n_outputs_ == sk.n_outputs_ == 1
    assert ours.out_activation_ == sk.out_activation_ == "logistic"
    assert list(ours.classes_) == list(sk.classes_) == ["other", "virginica"]
    # Trained, it separates virginica as well as scikit-learn's does.
    assert ours.score(X, yb) >= sk.score(X, yb) - 0.05 and ours.score(X, yb) > 0.9
    # The same weights give the same outputs: p = sigmoid(s) is P(classes_[1]).
    ours.coefs_ = [c.copy() for c in sk.coefs_]
    ours.intercepts_ = [b.copy() for b in sk.intercepts_]
    p = ours.predict_proba(X)
    assert p.shape == (150, 2)
    np.testing.assert_allclose(p, sk.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    assert ours.predict(X).shape == (150,)
    # scikit-learn's log(1 - p) cancels where p is near 1; ours is log sigmoid(-s).
    np.testing.assert_allclose(np.exp(ours.predict_log_proba(X)), p, rtol=1e-12, atol=0)
    assert ours.score(X, yb) == sk.score(X, yb)


def test_binary_log_proba_is_stable_and_log_of_proba(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    clf = _quiet(MLPClassifier((4,), max_iter=5, random_state=0).fit, X, y == 0)
    # Hand-set output layer: scores s = 40 x_0 (|s| up to ~100, where 1 - sigmoid(s)
    # cancels to 0 in float64 but sigmoid(-s) does not) and one row at s = -1000.
    W = np.zeros((4, 1))
    W[0, 0] = 1.0
    clf.coefs_ = [np.eye(4) * 40.0, W]
    clf.intercepts_ = [np.zeros(4), np.zeros(1)]
    Xa = np.vstack([np.abs(X), [[25.0, 0, 0, 0]]])  # ReLU keeps these; last row s = 1000
    s = 40.0 * Xa[:, 0]
    p = clf.predict_proba(Xa)
    # Reference from the definition, for s >= 0: log P(class 1) = -log1p(e^{-s}) and
    # log P(class 0) = log(e^{-s} / (1 + e^{-s})) = -s - log1p(e^{-s}).
    ref_log0 = -s - np.log1p(np.exp(-s))
    logp = clf.predict_log_proba(Xa)
    np.testing.assert_allclose(logp[:-1, 0], ref_log0[:-1], rtol=1e-12)
    np.testing.assert_allclose(logp[:, 1], -np.log1p(np.exp(-s)), rtol=1e-12, atol=1e-300)
    assert (p[:-1, 0] > 0).all()  # no cancellation: e^{-s}, not 1 - (1 - e^{-s})
    # e^{-1000} underflows: proba 0 and log_proba -inf, as scikit-learn's log(proba).
    assert p[-1, 0] == 0 and logp[-1, 0] == -np.inf
    np.testing.assert_array_equal(clf.predict(Xa), s > 0)


def test_binary_fit_trains_on_y_equal_to_second_class(iris) -> None:  # type: ignore[no-untyped-def]
    """The one output is P(classes_[1]): the loss is the binary cross-entropy of
    sigmoid(s) against y == classes_[1], checked with plain NumPy from the definition."""
    X, y = iris
    yb = np.where(y == 0, 7, 3)  # classes_ = [3, 7]: class 7 (setosa) is the positive one
    kw = {"alpha": 0.0, "max_iter": 30, "learning_rate_init": 0.05, "random_state": 0}
    clf = _quiet(MLPClassifier((5,), **kw).fit, X, yb)
    assert list(clf.classes_) == [3, 7]
    p = clf.predict_proba(X)[:, 1]
    t = yb == 7
    bce = -np.mean(t * np.log(p) + (1 - t) * np.log1p(-p))
    assert bce == pytest.approx(clf._net.compute_loss(X, t[:, None].astype(float)), rel=1e-10)
    assert clf.score(X, yb) == 1.0  # setosa is linearly separable


def test_binary_partial_fit_warm_start_and_early_stopping(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    yb = np.where(y == 2, "b", "a")
    clf = MLPClassifier((6,), random_state=0)
    clf.partial_fit(X, yb, classes=["a", "b"])
    clf.partial_fit(X[:40], yb[:40])  # only class "a" in this batch: still binary
    assert clf.coefs_[-1].shape == (6, 1) and clf.t_ == 190
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, np.where(y == 2, "c", "a"))
    warm = _quiet(MLPClassifier((6,), warm_start=True, max_iter=3, random_state=0).fit, X, yb)
    _quiet(warm.fit, X, yb)
    assert len(warm.loss_curve_) == 6 and warm.n_outputs_ == 1
    with pytest.raises(ValueError, match="multilabel now but was not before"):
        warm.fit(X, np.c_[y == 0, y == 1].astype(int))
    es = _quiet(
        MLPClassifier(
            (6,), early_stopping=True, max_iter=20, learning_rate_init=0.05, random_state=0
        ).fit,
        X,
        yb,
    )
    scores = np.asarray(es.validation_scores_)
    # accuracy on the 15 validation rows of the original labels: a multiple of 1/15
    np.testing.assert_allclose(scores * 15, np.round(scores * 15), atol=1e-9)
    assert es.best_validation_score_ == scores.max() and scores.max() > 0.7


@pytest.mark.parametrize("n_targets", [1, 3])
def test_sklearn_regressor_weights_give_same_predictions(regression, n_targets) -> None:  # type: ignore[no-untyped-def]
    X, Y = regression
    y = Y[:, 0] if n_targets == 1 else Y
    sk = _quiet(
        SkMLPRegressor(
            hidden_layer_sizes=(9, 4), activation="tanh", max_iter=50, random_state=0
        ).fit,
        X,
        y,
    )
    ours = _quiet(MLPRegressor((9, 4), activation="tanh", max_iter=1).fit, X, y)
    _ours_with_sklearn_weights(ours, sk)
    pred = ours.predict(X)
    assert pred.shape == sk.predict(X).shape == y.shape
    np.testing.assert_allclose(pred, sk.predict(X), rtol=0, atol=1e-6)
    assert ours.score(X, y) == pytest.approx(sk.score(X, y), abs=1e-9)


# --------------------------------------------------------------------------- loss and alpha


def _one_sgd_step_both(est_cls, sk_cls, X, y, sw, **params):  # type: ignore[no-untyped-def]
    """Fit both, give ours sklearn's weights, then one full-batch plain-SGD epoch each."""
    kw = dict(solver="sgd", momentum=0.0, shuffle=False, learning_rate_init=0.1, max_iter=3)
    sk = _quiet(sk_cls(**kw, **params).fit, X, y)
    ours = _quiet(est_cls(**kw, **params).fit, X, y)
    _ours_with_sklearn_weights(ours, sk)
    before = [c.copy() for c in sk.coefs_]
    sk.partial_fit(X, y, sample_weight=sw)
    ours.partial_fit(X, y, sample_weight=sw)
    return ours, sk, before


@pytest.mark.parametrize("weighted", [False, True])
def test_alpha_loss_and_gradient_match_sklearn_classifier(iris, weighted) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    sw = np.random.default_rng(0).uniform(0.2, 3.0, len(y)) if weighted else None
    ours, sk, before = _one_sgd_step_both(
        MLPClassifier, SkMLPClassifier, X, y, sw, hidden_layer_sizes=(5,), alpha=3.0
    )
    # The step moved the weights, and by the same amount: same gradient of the same loss.
    assert np.abs(sk.coefs_[0] - before[0]).max() > 1e-3
    for a, b in zip(ours.coefs_ + ours.intercepts_, sk.coefs_ + sk.intercepts_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert ours.loss_ == pytest.approx(sk.loss_, rel=1e-12)


def test_alpha_gradient_matches_sklearn_multioutput_regressor(regression) -> None:  # type: ignore[no-untyped-def]
    """Multi-output: the same step as sklearn (its gradient is that of the summed squared
    error); its loss_ averages over the targets, ours sums (see the next test)."""
    X, Y = regression
    ours, sk, before = _one_sgd_step_both(
        MLPRegressor, SkMLPRegressor, X, Y, None, hidden_layer_sizes=(6,), alpha=2.0
    )
    assert np.abs(sk.coefs_[0] - before[0]).max() > 1e-3
    for a, b in zip(ours.coefs_ + ours.intercepts_, sk.coefs_ + sk.intercepts_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_regression_loss_value_by_hand(regression) -> None:  # type: ignore[no-untyped-def]
    X, Y = regression
    alpha = 2.0
    kw = dict(solver="sgd", momentum=0.0, shuffle=False, learning_rate_init=1e-9)
    ours = _quiet(MLPRegressor((6,), alpha=alpha, max_iter=1, **kw).fit, X, Y)
    W1, W2 = (c.copy() for c in ours.coefs_)
    b1, b2 = (b.copy() for b in ours.intercepts_)
    ours.partial_fit(X, Y)  # one full-batch step; loss_ is the loss before it
    out = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    n = len(X)
    expected = 0.5 * np.sum((out - Y) ** 2) / n + alpha / (2 * n) * (np.sum(W1**2) + np.sum(W2**2))
    assert ours.loss_ == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- dtypes


def test_float32_input_keeps_float32_weights_and_outputs(iris, regression) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    clf = _quiet(MLPClassifier((5,), max_iter=5, random_state=0).fit, X.astype(np.float32), y)
    assert all(c.dtype == np.float32 for c in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert clf.predict_log_proba(X.astype(np.float32)).dtype == np.float32
    Xr, Y = regression
    reg = _quiet(MLPRegressor((5,), max_iter=5, random_state=0).fit, Xr.astype(np.float32), Y)
    assert reg.coefs_[0].dtype == np.float32
    assert reg.predict(Xr.astype(np.float32)).dtype == np.float32
    # float64 and integer input: float64 weights and outputs.
    reg64 = _quiet(MLPRegressor((5,), max_iter=5, random_state=0).fit, Xr.round().astype(int), Y)
    assert reg64.coefs_[0].dtype == np.float64 and reg64.predict(Xr).dtype == np.float64


# --------------------------------------------------------------------------- partial_fit


def test_partial_fit_equals_fit_epoch_by_epoch(iris) -> None:  # type: ignore[no-untyped-def]
    """Adam state carries over between partial_fit calls: k calls = fit(max_iter=k)."""
    X, y = iris
    kw = dict(hidden_layer_sizes=(6,), shuffle=False, random_state=3, n_iter_no_change=100)
    full = _quiet(MLPClassifier(max_iter=7, **kw).fit, X, y)
    inc = MLPClassifier(**kw)
    for _ in range(7):
        inc.partial_fit(X, y, classes=[0, 1, 2])
    assert inc.n_iter_ == 1 and inc.t_ == 7 * len(X) == full.t_
    np.testing.assert_allclose(inc.loss_curve_, full.loss_curve_, rtol=1e-12)
    for a, b in zip(inc.coefs_, full.coefs_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_partial_fit_classes_rules(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    clf = MLPClassifier((4,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # a subset of classes is fine
    assert list(clf.classes_) == [0, 1, 2] and clf.predict_proba(X).shape == (150, 3)
    with pytest.raises(ValueError, match=r"not in `self\.classes_`"):
        clf.partial_fit(X, np.where(y == 2, 7, y))
    with pytest.raises(ValueError, match="cannot change"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, y.astype(float))


def test_warm_start_with_other_classes_is_an_error(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    clf = _quiet(MLPClassifier((4,), max_iter=3, warm_start=True, random_state=0).fit, X, y)
    first = clf.coefs_[0].copy()
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X, np.where(y == 2, 5, y))
    _quiet(clf.fit, X, y)  # same classes: continues from the current weights
    assert clf.t_ == 6 * len(X) and len(clf.loss_curve_) == 6
    assert not np.array_equal(clf.coefs_[0], first)


def test_multiclass_multioutput_is_refused_clearly(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    Y = np.c_[y, 2 - y]  # two multiclass outputs: not an indicator matrix (multilabel)
    with pytest.raises(ValueError, match="multi-output classification is not supported"):
        MLPClassifier().fit(X, Y)


# --------------------------------------------------------------------------- stopping


def test_convergence_warning_at_max_iter_only(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        MLPClassifier((4,), max_iter=3, random_state=0).fit(X, y)
    # A huge tol: no epoch after the first improves enough; scikit-learn's rule stops when
    # more than n_iter_no_change epochs did not improve: 1 + 3 epochs (sklearn's own
    # MLPClassifier with these settings also gives n_iter_ == 4).
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier((4,), max_iter=50, tol=10.0, n_iter_no_change=2).fit(X, y)
    assert clf.n_iter_ == 4 and len(clf.loss_curve_) == 4
    assert clf.best_loss_ == min(clf.loss_curve_)


def test_early_stopping_restores_best_weights(regression, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    X, Y = regression
    seen: list[tuple[float, list[np.ndarray]]] = []
    original = Trainer.evaluate

    def spy(self, Xv, yv, sw=None):  # type: ignore[no-untyped-def]
        loss, score = original(self, Xv, yv, sw)
        seen.append((score, [self.net.params["W1"].copy(), self.net.params["W2"].copy()]))
        return loss, score

    monkeypatch.setattr(Trainer, "evaluate", spy)
    # A learning rate large enough that the validation R^2 goes up and down.
    reg = MLPRegressor(
        (16,),
        solver="sgd",
        learning_rate_init=0.3,
        momentum=0.9,
        early_stopping=True,
        n_iter_no_change=5,
        max_iter=200,
        random_state=0,
    )
    _quiet(reg.fit, X, Y[:, 0])
    scores = [s for s, _ in seen]
    assert reg.validation_scores_ == scores and len(scores) == reg.n_iter_
    best = int(np.argmax(scores))
    assert best < len(scores) - 1, "the test needs a run whose last epoch is not the best"
    assert reg.best_validation_score_ == scores[best]
    np.testing.assert_array_equal(reg.coefs_[0], seen[best][1][0])
    np.testing.assert_array_equal(reg.coefs_[1], seen[best][1][1])
    assert reg.best_loss_ is None


def test_keyboard_interrupt_leaves_usable_model(iris, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    calls = {"n": 0}
    original = MLP.loss_and_grads

    def interrupt_on_12th_batch(self, *args, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return original(self, *args, **kw)

    monkeypatch.setattr(MLP, "loss_and_grads", interrupt_on_12th_batch)
    clf = MLPClassifier((5,), batch_size=50, max_iter=100, random_state=0)  # 3 batches/epoch
    with pytest.warns(UserWarning, match="interrupted by user after 3 finished epoch"):
        clf.fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    p = clf.predict_proba(X)
    assert np.isfinite(p).all() and p.shape == (150, 3)


def test_batch_size_larger_than_data_is_clipped(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    with pytest.warns(UserWarning, match="batch_size=1000 is larger than the 150"):
        a = _quiet(MLPClassifier((4,), batch_size=1000, max_iter=3, random_state=0).fit, X, y)
    b = _quiet(MLPClassifier((4,), batch_size=150, max_iter=3, random_state=0).fit, X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


def test_divergence_is_a_clear_error(regression) -> None:  # type: ignore[no-untyped-def]
    X, Y = regression
    reg = MLPRegressor((8,), solver="sgd", momentum=0.0, learning_rate_init=1e6, max_iter=50)
    with pytest.raises(TrainingDiverged, match="learning_rate_init=") as info:
        reg.fit(X * 1e3, Y)
    # scikit-learn's words first, so code that matches them keeps working; one line.
    assert str(info.value).startswith("Solver produced non-finite parameter weights.")
    assert "\n" not in str(info.value)
    assert all(np.isfinite(c).all() for c in reg.coefs_)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("hidden_layer_sizes", (4, 0)),
        ("activation", "softplus"),
        ("solver", "newton"),
        ("max_fun", 0),
        ("alpha", -1.0),
        ("batch_size", 0),
        ("learning_rate_init", 0.0),
        ("max_iter", 0),
        ("momentum", 1.0),
        ("validation_fraction", 1.0),
        ("n_iter_no_change", 0),
    ],
)
def test_bad_parameters_name_themselves(iris, param, value) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    with pytest.raises(ValueError, match=param):
        MLPClassifier(**{param: value}).fit(X, y)


def test_prediction_of_many_rows_matches_row_by_row(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    clf = _quiet(MLPClassifier((5,), max_iter=5, random_state=0).fit, X, y)
    big = np.repeat(X, 70, axis=0)  # 10500 rows: more than one chunk of the engine
    p = clf.predict_proba(big)
    np.testing.assert_allclose(p[::70], clf.predict_proba(X), rtol=1e-12)
    np.testing.assert_allclose(p[-1], clf.predict_proba(X[-1:])[0], rtol=1e-12)


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip_classifier(tmp_path, iris) -> None:  # type: ignore[no-untyped-def]
    import backprop.io

    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = _quiet(
        MLPClassifier((6,), activation="logistic", max_iter=8, random_state=0, alpha=0.01).fit,
        X,
        names,
    )
    path = clf.save(tmp_path / "clf.safetensors")
    back = MLPClassifier.load(path)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    assert back.get_params() == clf.get_params()
    assert back.loss_curve_ == clf.loss_curve_ and back.n_iter_ == clf.n_iter_ == 8
    assert back.best_loss_ == clf.best_loss_ and back.t_ == clf.t_
    # The same file through the library's own loader (what the CLI uses).
    model = backprop.io.load(path)
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    with pytest.raises(ValueError, match="classifier"):
        MLPRegressor.load(path)
    # A loaded estimator can keep training.
    back.set_params(warm_start=True, max_iter=2)
    _quiet(back.fit, X, names)
    assert len(back.loss_curve_) == 10


def test_save_load_round_trip_binary_classifier(tmp_path, iris) -> None:  # type: ignore[no-untyped-def]
    import backprop.io
    from backprop import cli

    X, y = iris
    yb = np.where(y == 1, "versicolor", "other")
    clf = _quiet(MLPClassifier((6,), max_iter=40, random_state=0).fit, X, yb)
    path = clf.save(tmp_path / "bin.safetensors")
    back = MLPClassifier.load(path)
    assert back.coefs_[-1].shape == (6, 1) and back.out_activation_ == "logistic"
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    # The library's own loader (what the CLI uses) gives the labels and [1 - p, p].
    model = backprop.io.load(path)
    assert model.net.loss == "sigmoid_binary_cross_entropy" and model.net.n_outputs == 1
    np.testing.assert_array_equal(model.predict(X), clf.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), clf.predict_proba(X), rtol=1e-15)
    with pytest.raises(ValueError, match="classifier"):
        MLPRegressor.load(path)
    # `backprop predict` writes the labels.
    np.savetxt(tmp_path / "x.csv", X[:20], delimiter=",")
    out = tmp_path / "pred.csv"
    assert cli.main(["predict", str(path), str(tmp_path / "x.csv"), "--output", str(out)]) == 0
    lines = out.read_text().split()
    assert lines[0] == "prediction" and lines[1:] == list(clf.predict(X[:20]))
    # A loaded binary estimator keeps training with one output.
    back.set_params(warm_start=True, max_iter=2)
    _quiet(back.fit, X, yb)
    assert len(back.loss_curve_) == 42 and back.coefs_[-1].shape == (6, 1)


def test_save_load_round_trip_regressor_early_stopping(tmp_path, regression) -> None:  # type: ignore[no-untyped-def]
    X, Y = regression
    reg = _quiet(
        MLPRegressor((6,), early_stopping=True, max_iter=5, random_state=0).fit,
        X.astype(np.float32),
        Y,
    )
    back = MLPRegressor.load(reg.save(tmp_path / "reg.safetensors"))
    assert back.coefs_[0].dtype == np.float32
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    assert back.validation_scores_ == reg.validation_scores_
    assert back.best_validation_score_ == reg.best_validation_score_ and back.best_loss_ is None


def test_load_model_with_standardisation_folds_it_into_the_first_layer(tmp_path, iris) -> None:  # type: ignore[no-untyped-def]
    import backprop.io
    from backprop.data import Preprocessor

    X, _ = iris
    raw = X * np.array([1.0, 2.0, 3.0, 4.0]) + 5.0
    net = MLP([4, 5, 3], activation="tanh", dtype=np.float64, seed=1)
    pre = Preprocessor(n_features=4, input_scale=8.0, mean=raw.mean(0) / 8, scale=raw.std(0) / 8)
    model = backprop.io.Model(net, preprocessor=pre, classes=["a", "b", "c"])
    backprop.io.save(tmp_path / "m.safetensors", model)
    est = MLPClassifier.load(tmp_path / "m.safetensors")
    np.testing.assert_allclose(est.predict_proba(raw), model.predict_proba(raw), atol=1e-12)
    assert list(est.classes_) == ["a", "b", "c"] and est.activation == "tanh"


# --------------------------------------------------------------------------- L-BFGS


def _same_start(est, ref, X, y, sizes, seed=1):  # type: ignore[no-untyped-def]
    """Fit both for one iteration, then give both the same weights (drawn here, neither
    library's initialiser) so that a warm-started fit starts from the same point."""
    rng = np.random.default_rng(seed)
    for e in (est, ref):
        _quiet(e.set_params(max_iter=1).fit, X, y)
    for l, (a, b) in enumerate(itertools.pairwise(sizes)):
        W, c = rng.normal(0, 1 / np.sqrt(a), (a, b)), rng.normal(0, 0.1, b)
        est.coefs_[l] = W.copy()
        est.intercepts_[l] = c.copy()
        ref.coefs_[l] = W.copy()
        ref.intercepts_[l] = c.copy()


@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_reaches_sklearn_training_loss_classifier(iris, weighted) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    sw = np.random.default_rng(0).uniform(0.2, 2.0, len(y)) if weighted else None
    kw = dict(solver="lbfgs", alpha=1e-3, warm_start=True)
    for max_iter in (15, 200):  # mid-run and at convergence
        e, r = MLPClassifier((7,), **kw), SkMLPClassifier((7,), **kw)
        _same_start(e, r, X, y, [4, 7, 3])
        e.set_params(max_iter=max_iter)
        r.set_params(max_iter=max_iter)
        _quiet(e.fit, X, y, sample_weight=sw)
        _quiet(r.fit, X, y, sample_weight=sw)
        assert e.n_iter_ == r.n_iter_
        assert e.loss_ == pytest.approx(r.loss_, rel=1e-6)
        np.testing.assert_allclose(e.predict_proba(X), r.predict_proba(X), atol=1e-6)


def test_lbfgs_reaches_sklearn_training_loss_regressor(regression) -> None:  # type: ignore[no-untyped-def]
    # One target: scikit-learn's multi-output squared loss is scaled differently (see
    # docs/estimators.md), its one-target loss is the notes' 1/(2n) sum (y - o)^2.
    X, Y = regression
    y = Y[:, 0]
    kw = dict(solver="lbfgs", alpha=1e-2, activation="tanh", warm_start=True, max_iter=100)
    est = MLPRegressor(hidden_layer_sizes=(6,), **kw)
    ref = SkMLPRegressor(hidden_layer_sizes=(6,), **kw)
    _same_start(est, ref, X, y, [5, 6, 1])
    est.set_params(max_iter=100)
    ref.set_params(max_iter=100)
    _quiet(est.fit, X, y)
    _quiet(ref.fit, X, y)
    assert est.loss_ == pytest.approx(ref.loss_, rel=1e-6)
    assert est.n_iter_ == ref.n_iter_


def test_lbfgs_max_fun_and_max_iter_warn_as_sklearn(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        clf = MLPClassifier((7,), solver="lbfgs", max_fun=5, random_state=0).fit(X, y)
    assert clf.n_iter_ <= 5  # each iteration evaluates the function at least once
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        clf = MLPClassifier((7,), solver="lbfgs", max_iter=3, random_state=0).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # converges: no warning
        MLPClassifier((7,), solver="lbfgs", max_iter=500, random_state=0).fit(X, y)


def test_lbfgs_has_no_partial_fit(iris) -> None:  # type: ignore[no-untyped-def]
    for est in (MLPClassifier(solver="lbfgs"), MLPRegressor(solver="lbfgs")):
        assert not hasattr(est, "partial_fit")
        with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
            est.partial_fit  # noqa: B018
        assert "lbfgs is not stochastic" in str(info.value.__cause__)
    assert hasattr(MLPClassifier(solver="sgd"), "partial_fit")


def test_lbfgs_one_flat_buffer_and_float32(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    clf = _quiet(MLPClassifier((5,), solver="lbfgs", max_iter=20, random_state=0).fit, X, y)
    first, last = clf.coefs_[0], clf.intercepts_[-1]
    assert first.base is not None and first.base is last.base  # one buffer
    assert clf.predict(X).shape == y.shape
    clf32 = _quiet(
        MLPClassifier((5,), solver="lbfgs", max_iter=20, random_state=0).fit,
        X.astype(np.float32),
        y,
    )
    assert all(c.dtype == np.float32 for c in clf32.coefs_ + clf32.intercepts_)
    assert clf32.loss_ == pytest.approx(clf.loss_, rel=1e-3)


# --------------------------------------------------------------------------- learning rates


@pytest.mark.parametrize("rule", ["constant", "invscaling", "adaptive"])
def test_sgd_learning_rate_rules_follow_sklearn(iris, rule) -> None:  # type: ignore[no-untyped-def]
    # Full batch, no shuffling, no momentum: the same steps in both libraries (with
    # momentum scikit-learn keeps lr inside its velocity, see docs/estimators.md).
    # One random_state: both start from scikit-learn's initial weights, so the one-epoch
    # fits in _same_start leave the same best_loss_ (which the warm fit's rule carries on).
    X, y = iris
    # Only "adaptive" needs the no-improvement rule; for the others it is off, so that a
    # loss change within rounding of tol cannot stop one library an epoch before the other.
    kw = dict(
        solver="sgd", learning_rate=rule, learning_rate_init=0.5, power_t=0.3, momentum=0.0,
        batch_size=len(y), shuffle=False, warm_start=True, alpha=0.0,
        n_iter_no_change=2 if rule == "adaptive" else np.inf, tol=1e-2, random_state=0,
    )  # fmt: skip
    est, ref = MLPClassifier((6,), **kw), SkMLPClassifier((6,), **kw)
    _same_start(est, ref, X, y, [4, 6, 3])
    est.set_params(max_iter=60)
    ref.set_params(max_iter=60)
    _quiet(est.fit, X, y)
    _quiet(ref.fit, X, y)
    assert est.n_iter_ == ref.n_iter_
    # [0] is the one-epoch fit from different weights in _same_start.
    np.testing.assert_allclose(est.loss_curve_[1:], ref.loss_curve_[1:], rtol=1e-9)
    if rule == "adaptive":  # the rate was divided at least once instead of stopping
        assert ref._optimizer.learning_rate < 0.5
        assert est._optimizer.lr == pytest.approx(ref._optimizer.learning_rate)


def test_n_iter_no_change_inf_disables_the_rule(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    kw = dict(solver="sgd", learning_rate_init=1e-6, max_iter=25, tol=1.0, random_state=0)
    stopped = _quiet(MLPClassifier((4,), n_iter_no_change=2, **kw).fit, X, y)
    assert stopped.n_iter_ == 4  # epoch 1 beats inf, then 2 + 1 epochs without a gain of 1
    with pytest.warns(ConvergenceWarning):
        full = MLPClassifier((4,), n_iter_no_change=np.inf, **kw).fit(X, y)
    assert full.n_iter_ == 25


def test_lbfgs_non_finite_weights_message_is_sklearns(iris, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import scipy.optimize

    real = scipy.optimize.minimize

    def poisoned(*args, **kw):  # type: ignore[no-untyped-def]
        res = real(*args, **kw)
        res.x[0] = np.nan
        return res

    monkeypatch.setattr(scipy.optimize, "minimize", poisoned)
    X, y = iris
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        _quiet(MLPClassifier((3,), solver="lbfgs", max_iter=5).fit, X, y)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_joblib_round_trip_of_partial_fit_continues_identically(iris, solver) -> None:  # type: ignore[no-untyped-def]
    import io

    import joblib

    X, y = iris
    a = MLPClassifier((5,), solver=solver, learning_rate="adaptive", random_state=0)
    a.partial_fit(X, y, classes=[0, 1, 2])
    a.partial_fit(X, y)
    buf = io.BytesIO()
    joblib.dump(a, buf)
    buf.seek(0)
    b = joblib.load(buf)
    for est in (a, b):
        est.partial_fit(X, y)
        est.partial_fit(X, y)
    assert b.loss_curve_ == a.loss_curve_
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_pickle_round_trip_of_partial_fit_continues_identically(iris, solver) -> None:  # type: ignore[no-untyped-def]
    import pickle

    X, y = iris
    a = MLPClassifier((5,), solver=solver, random_state=0)
    a.partial_fit(X, y, classes=[0, 1, 2])
    b = pickle.loads(pickle.dumps(a))
    for est in (a, b):
        est.partial_fit(X, y)
    assert b.loss_curve_ == a.loss_curve_
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(p, q)


def test_joblib_memory_mapped_reload_predicts(tmp_path, iris) -> None:  # type: ignore[no-untyped-def]
    import joblib

    X, y = iris
    a = MLPClassifier((5,), solver="adam", random_state=0)
    a.partial_fit(X, y, classes=[0, 1, 2])
    joblib.dump(a, tmp_path / "a.joblib")
    b = joblib.load(tmp_path / "a.joblib", mmap_mode="r")
    np.testing.assert_array_equal(b.predict_proba(X), a.predict_proba(X))
    assert all(W.flags.writeable for W in b.coefs_)  # fresh copies, not the read-only maps


def test_joblib_memory_mapped_reload_keeps_training(tmp_path, iris) -> None:  # type: ignore[no-untyped-def]
    import joblib

    X, y = iris
    a = MLPClassifier((5,), solver="adam", random_state=0)
    a.partial_fit(X, y, classes=[0, 1, 2])
    joblib.dump(a, tmp_path / "a.joblib")
    b = joblib.load(tmp_path / "a.joblib", mmap_mode="r")
    for est in (a, b):
        est.partial_fit(X, y)
    assert b.loss_curve_ == a.loss_curve_


def test_partial_fit_after_a_warm_lbfgs_fit_trains_the_network(iris) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    clf = MLPClassifier((5,), solver="adam", random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    # L-BFGS moves the parameters into one flat buffer; the adam optimiser kept for
    # partial_fit must follow them there, or its steps would miss the network.
    _quiet(clf.set_params(solver="lbfgs", warm_start=True, max_iter=3).fit, X, y)
    before = [W.copy() for W in clf.coefs_]
    clf.set_params(solver="adam").partial_fit(X, y)
    assert not all(np.array_equal(W, V) for W, V in zip(before, clf.coefs_, strict=True))
    np.testing.assert_array_equal(clf.predict_proba(X), clf._net.predict_proba(X))


def _saved_meta(tmp_path, iris):  # type: ignore[no-untyped-def]
    import json

    import safetensors.numpy

    from backprop.io import METADATA_KEY

    X, y = iris
    clf = _quiet(MLPClassifier((4,), max_iter=2, random_state=0).fit, X, y)
    path = clf.save(tmp_path / "clf.safetensors")
    with safetensors.safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()[METADATA_KEY])
    return path, safetensors.numpy.load_file(path), meta


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("n_iter_", None, "n_iter_ must be a count, got None"),
        ("t_", -3, "t_ must be a count, got -3"),
        ("loss_", "lots", "loss_ must be a number or null, got 'lots'"),
        ("loss_curve_", [None], r"loss_curve_ must be a list of numbers, got \[None\]"),
        ("validation_scores_", 1.5, "validation_scores_ must be a list of numbers or null"),
    ],
)
def test_broken_fitted_record_names_the_file_and_the_field(  # type: ignore[no-untyped-def]
    tmp_path, iris, key, value, words
) -> None:
    import json

    import safetensors.numpy

    import backprop.io
    from backprop.estimators.modelfile import FittedRecordError
    from backprop.io import METADATA_KEY, ModelFileError

    path, tensors, meta = _saved_meta(tmp_path, iris)
    meta["config"]["fitted"][key] = value
    blob = safetensors.numpy.save(tensors, metadata={METADATA_KEY: json.dumps(meta)})
    path.write_bytes(blob)
    model = backprop.io.load(path)  # the model file itself is fine: io does not look inside
    with pytest.raises(FittedRecordError, match=words):
        MLPClassifier.from_model(model)
    with pytest.raises(ModelFileError, match=words) as info:
        MLPClassifier.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "config fitted" in message and "\n" not in message


def test_fitted_record_of_another_estimator_is_not_read(tmp_path, iris) -> None:  # type: ignore[no-untyped-def]
    import backprop.io

    path, _, _ = _saved_meta(tmp_path, iris)
    model = backprop.io.load(path)
    model.config["estimator"] = "SomethingElse"
    model.config["fitted"]["n_iter_"] = "not a count"
    est = MLPClassifier.from_model(model)
    assert est.n_iter_ == 0 and est.loss_curve_ == [] and est.best_loss_ == np.inf


def test_binary_estimator_model_file_works_with_backprop_evaluate_and_predict_proba(
    tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    import contextlib
    import io

    from backprop import cli

    X, y = load_iris(return_X_y=True)
    keep = y > 0  # versicolor (1) against virginica (2): a binary problem
    X, y = X[keep], y[keep]
    clf = MLPClassifier((8,), solver="lbfgs", max_iter=300, random_state=0).fit(X, y)
    path = clf.save(tmp_path / "bin.safetensors")
    data = tmp_path / "iris.csv"
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", comments="",
               header="a,b,c,d,target")  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["predict", str(path), str(data), "--proba"])
    assert code == 0
    rows = out.getvalue().splitlines()
    assert rows[0] == "p_1,p_2"
    proba = np.array([[float(v) for v in r.split(",")] for r in rows[1:]])
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-6)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["evaluate", str(path), "--data", str(data), "--json"])
    assert code == 0, out.getvalue()
    import json

    doc = json.loads(out.getvalue())
    assert doc["task"] == "classification" and doc["accuracy"] >= 0.9


# --------------------------------------------------------------------------- scikit-learn's
# behaviours from its test_mlp.py (issue 25; tests/test_sklearn_mlp.py runs that module)


@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_initial_weights_are_sklearns_for_the_same_random_state(iris, activation) -> None:  # type: ignore[no-untyped-def]
    X, y = iris
    # One adam step of 1e-300 moves no float64 weight: both hold their initial weights.
    kw = dict(activation=activation, learning_rate_init=1e-300, max_iter=1, random_state=3)
    ours = _quiet(MLPClassifier((5, 4), **kw).fit, X, y)
    ref = _quiet(SkMLPClassifier((5, 4), **kw).fit, X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_larger_alpha_gives_smaller_weights_in_every_layer() -> None:
    # scikit-learn's test_alpha: digits 0/1 scaled to [0, 1], alpha 0 against 1.
    from sklearn.datasets import load_digits

    X, y = load_digits(n_class=2, return_X_y=True)
    X, y = X[:100] / 16.0, y[:100]
    sums = [
        [
            np.abs(W).sum()
            for W in _quiet(MLPClassifier(10, alpha=a, random_state=1).fit, X, y).coefs_
        ]
        for a in (0.0, 1.0)
    ]
    assert all(big > small for big, small in zip(*sums, strict=True))


def test_early_stopping_split_is_stratified_and_refuses_a_lone_class() -> None:
    # scikit-learn's test_early_stopping_stratified: train_test_split(stratify=...) names
    # the lone class as its boolean column does.
    X = [[1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7]]
    with pytest.raises(ValueError, match=r"too few members are: \['True'\]"):
        MLPClassifier(early_stopping=True).fit(X[:4], [0, 0, 0, 1])
    # More classes: stratified on the classes too (scikit-learn splits those unstratified).
    with pytest.raises(ValueError, match="least populated class"):
        MLPClassifier(early_stopping=True).fit(X, [0, 0, 1, 1, 1, 2])


def test_diverging_loss_with_early_stopping_keeps_the_best_epoch(iris) -> None:  # type: ignore[no-untyped-def]
    # scikit-learn's test_mlp_diverging_loss (its #29504): no error, the epoch scores NaN.
    X, y = load_iris(return_X_y=True)
    reg = MLPRegressor(
        100, activation="identity", solver="sgd", learning_rate_init=1.0, max_iter=20,
        early_stopping=True, random_state=0,
    )  # fmt: skip
    with pytest.warns(ConvergenceWarning, match="diverged"), np.errstate(all="ignore"):
        reg.fit(X, y)
    assert isinstance(reg.validation_scores_[-1], float) and np.isnan(reg.validation_scores_[-1])
    assert np.isnan(reg.loss_curve_[-1]) and reg.n_iter_ == len(reg.validation_scores_)
    assert all(np.isfinite(W).all() for W in reg.coefs_ + reg.intercepts_)
    best = int(np.nanargmax(reg.validation_scores_))
    assert reg.best_validation_score_ == reg.validation_scores_[best]
    # The best epoch's weights (epoch 1: R^2 about -5e5), not a diverged one's (-1e21 on).
    assert reg.score(X, y) == pytest.approx(reg.best_validation_score_, rel=0.5)
    with pytest.raises(TrainingDiverged, match="non-finite"), np.errstate(all="ignore"):
        reg.set_params(early_stopping=False).fit(X, y)  # without it: scikit-learn's error


def test_adaptive_learning_rate_as_sklearn(iris) -> None:  # type: ignore[no-untyped-def]
    # scikit-learn's test_adaptive_learning_rate, with our optimiser's name for the rate.
    clf = MLPClassifier(tol=0.5, max_iter=3000, solver="sgd", learning_rate="adaptive")
    clf.fit([[3, 2], [1, 6]], [1, 0])
    assert clf.n_iter_ < 3000 and clf._optimizer.lr < 1e-6
    # Across partial_fit calls the no-improvement count carries on, so the rate is divided
    # by 5 there too, at the same calls as scikit-learn's.
    X, y = iris
    kw = dict(solver="sgd", learning_rate="adaptive", tol=1e9, n_iter_no_change=2, random_state=0)
    ours, ref = MLPClassifier((4,), **kw), SkMLPClassifier((4,), **kw)
    rates = []
    for _ in range(9):
        ours.partial_fit(X, y, classes=[0, 1, 2])
        ref.partial_fit(X, y, classes=[0, 1, 2])
        rates.append((ours._optimizer.lr, ref._optimizer.learning_rate))
    np.testing.assert_allclose(*zip(*rates, strict=True), rtol=1e-12)
    assert rates[-1][0] < 1e-3 / 5


def test_warm_start_learning_rate_as_sklearn(iris) -> None:  # type: ignore[no-untyped-def]
    # scikit-learn's test_learning_rate_warmstart: each warm fit starts the rate afresh,
    # and "invscaling" goes on from the examples seen by every fit (t_ = 8).
    X4, y4 = [[3, 2], [1, 6], [5, 6], [-2, -4]], [1, 1, 1, 0]
    for rule in ("invscaling", "constant"):
        clf = MLPClassifier(
            4, solver="sgd", learning_rate=rule, max_iter=1, power_t=0.25, warm_start=True
        )
        _quiet(clf.fit, X4, y4)
        first = clf._optimizer.lr
        _quiet(clf.fit, X4, y4)
        expected = first if rule == "constant" else clf.learning_rate_init / 9**0.25
        assert clf._optimizer.lr == pytest.approx(expected, rel=1e-12)
    # The no-improvement count carries across warm fits: one that ended stopped stops the
    # next after one epoch, as scikit-learn's.
    X, y = iris
    kw = dict(
        solver="sgd", tol=1e9, n_iter_no_change=2, max_iter=5, warm_start=True, random_state=0
    )
    ours, ref = MLPClassifier((4,), **kw), SkMLPClassifier((4,), **kw)
    for _ in range(3):
        _quiet(ours.fit, X, y)
        _quiet(ref.fit, X, y)
        assert (ours.n_iter_, ours._no_improvement_count) == (
            ref.n_iter_,
            ref._no_improvement_count,
        )


def _counts() -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts whose log-mean is linear in X."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    return X, rng.poisson(np.exp(1.0 + X[:, 0] - 0.5 * X[:, 1])).astype(float)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_poisson_regressor_as_sklearn(solver: str) -> None:
    """loss="poisson": scikit-learn's out_activation_ "exp", loss_ (from the same initial
    weights, lbfgs), and predictions that are the means e^s."""
    X, y = _counts()
    params = dict(hidden_layer_sizes=(4,), solver=solver, max_iter=300, random_state=0)
    params |= {"tol": 1e-8} if solver == "lbfgs" else {"learning_rate_init": 0.01}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPRegressor(loss="poisson", **params).fit(X, y)
        theirs = SkMLPRegressor(loss="poisson", **params).fit(X, y)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    pred = ours.predict(X)
    s = X @ ours.coefs_[0] + ours.intercepts_[0]
    s = np.maximum(s, 0) @ ours.coefs_[1] + ours.intercepts_[1]
    np.testing.assert_allclose(pred, np.exp(s[:, 0]), rtol=1e-12)
    assert pred.min() > 0
    if solver == "lbfgs":
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-5)
    assert np.corrcoef(pred, np.exp(1.0 + X[:, 0] - 0.5 * X[:, 1]))[0, 1] > 0.9


def test_a_poisson_network_is_validated_on_its_means() -> None:
    """The validation R^2 (early stopping's score) and RMSE are those of the predicted
    means e^s, as scikit-learn's score, not of the log-means the network outputs."""
    from sklearn.metrics import r2_score

    from backprop.optim import SGD

    X, y = _counts()
    net = MLP([2, 4, 1], loss="poisson", dtype=np.float64, seed=0)
    mu = np.exp(net.forward(X))[:, 0]
    for metric, want in (
        ("r2", r2_score(y, mu)),
        ("rmse", float(np.sqrt(np.mean((mu - y) ** 2)))),
    ):
        trainer = Trainer(net, SGD(net.params, lr=0.1), batch_size=50, metric=metric)
        _, got = trainer.evaluate(X, y.reshape(-1, 1))
        assert got == pytest.approx(want, rel=1e-9), metric


def test_evaluate_scores_a_poisson_model_on_its_means() -> None:
    """`backprop.report.evaluate` (``backprop evaluate``): the RMSE of e^s, not of s."""
    from backprop.report import evaluate

    X, y = _counts()
    reg = MLPRegressor((4,), loss="poisson", solver="lbfgs", max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    scores = evaluate(reg.to_model(), X, y)
    want = float(np.sqrt(np.mean((reg.predict(X) - y) ** 2)))
    assert scores["rmse"] == pytest.approx(want, rel=1e-6)


def test_poisson_regressor_checks_its_targets_and_options() -> None:
    X, y = _counts()
    with pytest.raises(ValueError, match=r"Some value\(s\) of y are out of the valid range"):
        MLPRegressor(loss="poisson", max_iter=2).fit(X, y - 1)
    with pytest.raises(ValueError, match="loss"):
        MLPRegressor(loss="absolute_error", max_iter=2).fit(X, y)
    est = MLPRegressor((8,), loss="poisson", early_stopping=True, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)  # early stopping works with the Poisson loss (scored below)
    assert len(est.validation_scores_) == est.n_iter_
    reg = MLPRegressor((3,), loss="poisson", max_iter=2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
        reg.set_params(loss="squared_error")
        with pytest.raises(ValueError, match="the network was fitted with loss='poisson'"):
            reg.fit(X, y)


def test_poisson_regressor_model_file_round_trip(tmp_path) -> None:
    X, y = _counts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = MLPRegressor((5,), loss="poisson", max_iter=20, random_state=0).fit(X, y)
    path = reg.save(tmp_path / "poisson.safetensors")
    back = MLPRegressor.load(path)
    assert back.loss == "poisson" and back.out_activation_ == "exp"
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    with pytest.raises(ValueError, match="the model is a regressor"):
        MLPClassifier.load(path)
