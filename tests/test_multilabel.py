"""Multilabel classification (issue 17, item 3): independent sigmoid outputs with binary
cross-entropy.

References are independent of our code: PyTorch's ``BCEWithLogitsLoss`` and autograd in
float64, central finite differences, scikit-learn's own ``MLPClassifier`` given the same
weights, and scikit-learn's ``accuracy_score``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from backprop.estimators import MLPClassifier
from backprop.gradcheck import check_gradients
from backprop.losses import LOSSES, sigmoid
from backprop.network import MLP
from backprop.optim import SGD
from backprop.trainer import Trainer

torch = pytest.importorskip("torch")
LOSS = "sigmoid_binary_cross_entropy"


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, Y = make_multilabel_classification(150, 8, n_classes=4, random_state=0)
    return (X - X.mean(0)) / X.std(0), Y


def _torch_reference(
    S: np.ndarray, Y: np.ndarray, w: np.ndarray | None
) -> tuple[float, np.ndarray]:
    s = torch.tensor(S, dtype=torch.float64, requires_grad=True)
    per_entry = torch.nn.BCEWithLogitsLoss(reduction="none")(
        s, torch.tensor(Y, dtype=torch.float64)
    )
    per_example = per_entry.sum(dim=1)
    wt = torch.ones(len(S), dtype=torch.float64) if w is None else torch.tensor(w)
    J = (per_example * wt).sum() / wt.sum()
    J.backward()
    return float(J.detach()), s.grad.numpy()


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("scale", [1.0, 40.0, 1000.0])
def test_loss_and_delta_equal_torch_bce_with_logits(weighted: bool, scale: float) -> None:
    rng = np.random.default_rng(1)
    S = rng.standard_normal((9, 5)) * scale
    Y = (rng.random((9, 5)) < 0.4).astype(np.float64)
    w = rng.random(9) + 0.1 if weighted else None
    J_ref, G_ref = _torch_reference(S, Y, w)
    J, G = LOSSES[LOSS](S.copy(), Y, sample_weight=w)
    assert abs(J - J_ref) <= 1e-10 * max(1.0, abs(J_ref))
    np.testing.assert_allclose(G, G_ref, rtol=1e-10, atol=1e-15)
    # in place over the scores, as the network uses it
    S2 = S.copy()
    J2, G2 = LOSSES[LOSS](S2, Y, out=S2, sample_weight=w)
    assert G2 is S2 and J2 == J
    np.testing.assert_array_equal(G2, G)


def test_sigmoid_is_stable_and_keeps_tiny_probabilities() -> None:
    s = np.array([[-1000.0, -40.0, 0.0, 40.0, 1000.0]])
    p = sigmoid(s)
    ref = torch.sigmoid(torch.tensor(s)).numpy()
    np.testing.assert_allclose(p, ref, rtol=1e-15, atol=0)
    assert p[0, 1] > 0  # e^-40, not rounded to 0
    p32 = sigmoid(s.astype(np.float32))
    assert p32.dtype == np.float32 and np.isfinite(p32).all()


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_engine_gradients_pass_finite_differences(activation: str, data) -> None:  # type: ignore[no-untyped-def]
    X, Y = data
    net = MLP([X.shape[1], 6, 5, Y.shape[1]], activation, loss=LOSS, dtype=np.float64, seed=3)
    _, grads = net.loss_and_grads(X[:20], Y[:20])
    errors = check_gradients(lambda: net.compute_loss(X[:20], Y[:20]), net.params, grads)
    assert max(errors.values()) < 1e-6, errors


def test_engine_loss_equals_torch_network(data) -> None:  # type: ignore[no-untyped-def]
    """The whole net: J and dJ/dW1 against torch autograd over the same weights."""
    X, Y = data
    net = MLP([X.shape[1], 7, Y.shape[1]], "relu", loss=LOSS, dtype=np.float64, seed=0)
    J, grads = net.loss_and_grads(X, Y)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    S = torch.relu(torch.tensor(X) @ P["W1"] + P["b1"]) @ P["W2"] + P["b2"]
    Jt = torch.nn.BCEWithLogitsLoss(reduction="sum")(S, torch.tensor(Y, dtype=torch.float64))
    Jt = Jt / len(X)
    Jt.backward()
    Jv = float(Jt.detach())
    assert abs(J - Jv) <= 1e-10 * abs(Jv)
    for k in net.params:
        np.testing.assert_allclose(grads[k], P[k].grad.numpy(), rtol=1e-10, atol=1e-14)


def test_check_y_wants_a_01_indicator_matrix() -> None:
    net = MLP([3, 4, 2], loss=LOSS, dtype=np.float64)
    X = np.zeros((2, 3))
    with pytest.raises(ValueError, match="indicator matrix of shape"):
        net.loss_and_grads(X, np.array([0, 1]))
    with pytest.raises(ValueError, match="must be 0 or 1"):
        net.loss_and_grads(X, np.array([[0, 2], [1, 0]]))
    with pytest.raises(ValueError, match="indicator matrix of shape"):
        net.loss_and_grads(X, np.ones((2, 3)))


def test_engine_predict_thresholds_probabilities_at_half(data) -> None:  # type: ignore[no-untyped-def]
    X, Y = data
    net = MLP([X.shape[1], 5, Y.shape[1]], loss=LOSS, dtype=np.float64, seed=0)
    p = net.predict_proba(X)
    np.testing.assert_array_equal(net.predict(X), (p > 0.5).astype(int))
    assert not np.allclose(p.sum(axis=1), 1.0)  # independent, not a softmax


def test_subset_accuracy_is_the_validation_metric(data) -> None:  # type: ignore[no-untyped-def]
    X, Y = data
    net = MLP([X.shape[1], 5, Y.shape[1]], loss=LOSS, dtype=np.float64, seed=0)
    trainer = Trainer(net, SGD(net.params, 0.1), batch_size=32, metric="accuracy")
    trainer.fit(X, Y.astype(np.float64), epochs=3)
    _, metric = trainer.evaluate(X, Y.astype(np.float64))
    assert metric == pytest.approx(accuracy_score(Y, net.predict(X)), abs=1e-15)


# --------------------------------------------------------------------------- estimator
def _quiet(fn, *args, **kw):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kw)


def test_estimator_attributes_as_sklearn(data) -> None:  # type: ignore[no-untyped-def]
    X, Y = data
    ours = _quiet(MLPClassifier((6,), max_iter=5, random_state=0).fit, X, Y)
    theirs = _quiet(SkMLPClassifier((6,), max_iter=5, random_state=0).fit, X, Y)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert ours.n_outputs_ == theirs.n_outputs_ == Y.shape[1]
    assert [W.shape for W in ours.coefs_] == [W.shape for W in theirs.coefs_]
    assert ours.predict(X).shape == Y.shape and ours.predict(X).dtype == theirs.predict(X).dtype


def test_estimator_with_sklearn_weights_predicts_as_sklearn(data) -> None:  # type: ignore[no-untyped-def]
    X, Y = data
    theirs = _quiet(SkMLPClassifier((6,), max_iter=30, random_state=0).fit, X, Y)
    ours = _quiet(MLPClassifier((6,), max_iter=1, random_state=1).fit, X, Y)
    ours.coefs_ = [W.copy() for W in theirs.coefs_]
    ours.intercepts_ = [b.copy() for b in theirs.intercepts_]
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(
        ours.predict_log_proba(X), np.log(theirs.predict_proba(X)), rtol=1e-12
    )
    assert ours.score(X, Y) == theirs.score(X, Y)


def test_estimator_learns_and_sklearn_loss_agrees(data) -> None:  # type: ignore[no-untyped-def]
    """Training lowers the loss and fits as well as scikit-learn; the engine's loss is
    scikit-learn's multilabel definition."""
    X, Y = data
    kw = {"max_iter": 300, "alpha": 0, "learning_rate_init": 0.01, "random_state": 0}
    clf = _quiet(MLPClassifier((16,), **kw).fit, X, Y)
    sk = _quiet(SkMLPClassifier((16,), **kw).fit, X, Y)
    p = clf.predict_proba(X)
    # scikit-learn's binary_log_loss: summed over labels, averaged over examples
    sk_loss = -(Y * np.log(p) + (1 - Y) * np.log1p(-p)).sum() / len(X)
    assert sk_loss == pytest.approx(clf._net.compute_loss(X, Y), rel=1e-10)
    assert clf.loss_curve_[-1] < 0.3 * clf.loss_curve_[0]
    assert accuracy_score(Y, clf.predict(X)) >= accuracy_score(Y, sk.predict(X)) - 0.1


def test_partial_fit_and_warm_start_rules(data) -> None:  # type: ignore[no-untyped-def]
    X, Y = data
    clf = MLPClassifier((6,), random_state=0)
    clf.partial_fit(X, Y, classes=np.arange(Y.shape[1]))
    clf.partial_fit(X, Y)
    assert clf.t_ == 2 * len(X) and clf.predict(X).shape == Y.shape
    with pytest.raises(ValueError, match="multilabel now but was not before"):
        clf.partial_fit(X, Y[:, 0])
    with pytest.raises(ValueError, match="has 3 labels but the classifier was fitted on 4"):
        clf.partial_fit(X, Y[:, :3])
    # a fresh fit may change the kind of problem: three classes (softmax) ...
    _quiet(clf.fit, X, Y[:, 0] + Y[:, 1])
    assert clf.predict(X).shape == (len(X),) and clf.out_activation_ == "softmax"
    assert clf.n_outputs_ == 3
    # ... or two: scikit-learn's binary layout, one logistic output for P(classes_[1])
    _quiet(clf.fit, X, Y[:, 0])
    assert clf.predict(X).shape == (len(X),) and clf.out_activation_ == "logistic"
    assert clf.n_outputs_ == 1 and clf.predict_proba(X).shape == (len(X), 2)


def test_early_stopping_scores_subset_accuracy(data) -> None:  # type: ignore[no-untyped-def]
    X, Y = data
    clf = _quiet(MLPClassifier((8,), max_iter=15, early_stopping=True, random_state=0).fit, X, Y)
    scores = np.asarray(clf.validation_scores_)
    assert len(scores) == clf.n_iter_ and ((0 <= scores) & (scores <= 1)).all()
    # a subset accuracy over ~15 validation rows is a multiple of 1/15
    n_val = int(np.ceil(0.1 * len(X)))
    np.testing.assert_allclose(scores * n_val, np.round(scores * n_val), atol=1e-9)


def test_float32_multilabel_stays_float32(data) -> None:  # type: ignore[no-untyped-def]
    X, Y = data
    clf = _quiet(MLPClassifier((6,), max_iter=3, random_state=0).fit, X.astype(np.float32), Y)
    assert clf.coefs_[0].dtype == np.float32
    assert clf.predict_proba(X.astype(np.float32)).dtype == np.float32
