"""Label smoothing of the softmax cross-entropy (issue 15): its gradient (p - q) / n
against finite differences and PyTorch's cross_entropy(label_smoothing=e)."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from backprop.gradcheck import check_gradients, random_network_problem, relative_error
from backprop.losses import softmax_cross_entropy

SIZES = [6, 5, 4]


def smoothed_loss_by_definition(S: np.ndarray, y: np.ndarray, e: float, w=None) -> float:
    """-sum_k q_k log p_k per example, q = (1 - e) onehot(y) + e / c, written from the
    definition with a log-softmax of NumPy's own."""
    n, c = S.shape
    logp = S - S.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    q = np.full((n, c), e / c)
    q[np.arange(n), y] += 1 - e
    losses = -(q * logp).sum(axis=1)
    return float(np.average(losses, weights=w))


@pytest.mark.parametrize("e", [0.05, 0.1, 0.3])
def test_loss_and_score_gradient_against_the_definition_and_finite_differences(e):
    rng = np.random.default_rng(0)
    S = rng.normal(0, 3, (7, 4))
    y = rng.integers(0, 4, 7)
    J, G = softmax_cross_entropy(S.copy(), y, label_smoothing=e)
    assert J == pytest.approx(smoothed_loss_by_definition(S, y, e), rel=1e-13)
    errors = check_gradients(lambda: smoothed_loss_by_definition(S, y, e), {"S": S}, {"S": G})
    assert errors["S"] <= 1e-8
    # dJ/dS = (p - q) / n: every row of n * G sums to 0 (p and q are distributions)
    np.testing.assert_allclose((7 * G).sum(axis=1), 0, atol=1e-14)


def test_zero_smoothing_is_the_plain_loss_bit_for_bit():
    rng = np.random.default_rng(1)
    S = rng.normal(0, 3, (7, 4)).astype(np.float32)
    y = rng.integers(0, 4, 7)
    J0, G0 = softmax_cross_entropy(S.copy(), y)
    J1, G1 = softmax_cross_entropy(S.copy(), y, label_smoothing=0.0)
    assert J0 == J1
    np.testing.assert_array_equal(G0, G1)


@pytest.mark.parametrize("weighted", [False, True])
def test_network_gradients_match_pytorch_cross_entropy_with_label_smoothing(
    torch: ModuleType, weighted: bool
) -> None:
    e = 0.15
    net, X, y = random_network_problem(SIZES, "relu", "softmax_cross_entropy", n=9, seed=3)
    w = np.random.default_rng(2).uniform(0.2, 2.0, 9) if weighted else None
    J, grads = net.loss_and_grads(X, y, sample_weight=w, label_smoothing=e)
    params = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.params.items()
    }
    h = torch.tensor(X)
    for l in range(1, net.n_layers + 1):
        h = h @ params[f"W{l}"] + params[f"b{l}"]
        if l < net.n_layers:
            h = torch.relu(h)
    per = torch.nn.functional.cross_entropy(h, torch.tensor(y), label_smoothing=e, reduction="none")
    tw = torch.ones(9, dtype=torch.float64) if w is None else torch.tensor(w)
    loss = (per * tw).sum() / tw.sum()
    loss.backward()
    assert J == pytest.approx(float(loss.detach()), rel=1e-12)
    for k, p in params.items():
        assert relative_error(grads[k], p.grad.numpy()) <= 1e-10, k


def test_network_gradients_pass_finite_differences_with_label_smoothing():
    net, X, y = random_network_problem(SIZES, "tanh", "softmax_cross_entropy", n=8, seed=4)
    J, grads = net.loss_and_grads(X, y, label_smoothing=0.2)

    def loss() -> float:
        return smoothed_loss_by_definition(net.forward(X, check=False), y, 0.2)

    assert J == pytest.approx(loss(), rel=1e-12)
    errors = check_gradients(loss, net.params, grads)
    assert max(errors.values()) <= 1e-7, errors


def test_label_smoothing_is_refused_for_a_regressor_and_out_of_range():
    from backprop import MLP
    from backprop.config import TrainConfig
    from backprop.optim import make_optimizer
    from backprop.trainer import Trainer

    net = MLP([3, 4, 1], loss="squared_error")
    with pytest.raises(ValueError, match="label_smoothing needs a classifier"):
        Trainer(net, make_optimizer("sgd", net.params, lr=0.1), batch_size=4, label_smoothing=0.1)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="label_smoothing"):
            TrainConfig(label_smoothing=bad).validate()


def test_training_with_label_smoothing_reproduces_and_differs_from_without():
    from backprop import MLP
    from backprop.config import TrainConfig
    from backprop.training import fit

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 120)
    X = rng.normal(0, 1, (120, 5)).astype(np.float32)
    X[np.arange(120), y] += 2
    runs = []
    for e in (0.1, 0.1, 0.0):
        net = MLP([5, 8, 3], seed=0)
        fit(net, X, y, config=TrainConfig(hidden=(8,), epochs=3, label_smoothing=e), progress=False)
        runs.append(net.params["W1"].copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
