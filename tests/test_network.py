"""The engine `MLP`: PyTorch autograd agreement, finite differences, dtypes, validation."""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np
import pytest

from backprop import MLP
from backprop.gradcheck import check_gradients, random_network_problem, relative_error

ACTIVATIONS = ["relu", "tanh", "sigmoid", "identity"]
LOSSES = ["softmax_cross_entropy", "squared_error"]
WIDTHS = [7, 5, 6, 4, 3]  # odd, distinct sizes


def _sizes(depth: int) -> list[int]:
    return [*WIDTHS[:depth], 3]


def _torch_loss_and_grads(
    torch: ModuleType, net: MLP, X: np.ndarray, y: np.ndarray
) -> tuple[float, dict[str, np.ndarray]]:
    """The same network in PyTorch autograd, float64, W stored (fan_in, fan_out) as ours."""
    params = {
        k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.params.items()
    }
    act = {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "identity": lambda t: t,
    }[net.activation]
    h = torch.tensor(X, dtype=torch.float64)
    for l in range(1, net.n_layers + 1):
        h = h @ params[f"W{l}"] + params[f"b{l}"]
        if l < net.n_layers:
            h = act(h)
    if net.is_classifier:
        loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    else:
        # J = 1/(2n) sum_i ||y_i - o_i||^2
        loss = 0.5 * ((h - torch.tensor(y, dtype=torch.float64)) ** 2).sum(dim=1).mean()
    loss.backward()
    return float(loss.detach()), {k: p.grad.numpy() for k, p in params.items()}


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("fused", [False, True], ids=["numpy", "fused"])
def test_gradients_match_pytorch_autograd(
    torch: ModuleType, depth: int, activation: str, loss: str, fused: bool
) -> None:
    net, X, y = random_network_problem(_sizes(depth), activation, loss, n=11, seed=depth)
    net.fused = fused  # the one-pass kernels (backprop.kernels) must agree with autograd too
    J, grads = net.loss_and_grads(X, y)
    J_torch, grads_torch = _torch_loss_and_grads(torch, net, X, y)
    assert J == pytest.approx(J_torch, rel=1e-12)
    assert grads.keys() == grads_torch.keys()
    for key in grads:
        assert grads[key].shape == net.params[key].shape
        assert relative_error(grads[key], grads_torch[key]) <= 1e-10, key


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_pass_finite_differences(depth: int, activation: str, loss: str) -> None:
    net, X, y = random_network_problem(_sizes(depth), activation, loss, n=11, seed=depth + 10)
    _, grads = net.loss_and_grads(X, y)
    errors = check_gradients(lambda: net.compute_loss(X, y), net.params, grads)
    assert max(errors.values()) <= 1e-7, errors


def test_multi_output_regression_matches_pytorch(torch: ModuleType) -> None:
    net, X, y = random_network_problem([6, 9, 4], "tanh", "squared_error", n=13, seed=3)
    J, grads = net.loss_and_grads(X, y)
    J_torch, grads_torch = _torch_loss_and_grads(torch, net, X, y)
    assert J == pytest.approx(J_torch, rel=1e-12)
    for key in grads:
        assert relative_error(grads[key], grads_torch[key]) <= 1e-10


def test_sample_weight_is_a_weighted_mean() -> None:
    """Weights (2, 0, 1) equal the unweighted mean over the rows (0, 0, 2)."""
    net, X, y = random_network_problem([5, 4, 3], "relu", "softmax_cross_entropy", n=3, seed=1)
    J_w, g_w = net.loss_and_grads(X, y, sample_weight=np.array([2.0, 0.0, 1.0]))
    J_r, g_r = net.loss_and_grads(X[[0, 0, 2]], y[[0, 0, 2]])
    assert J_w == pytest.approx(J_r, rel=1e-12)
    for key in g_w:
        assert relative_error(g_w[key], g_r[key]) <= 1e-12


def test_no_state_carries_between_calls() -> None:
    net, X, y = random_network_problem([5, 8, 3], "relu", "softmax_cross_entropy", n=9, seed=2)
    J1, g1 = net.loss_and_grads(X, y)
    net.loss_and_grads(X[:4], y[:4])  # another batch size in between
    net.loss_and_grads(X[:2], y[:2])
    J2, g2 = net.loss_and_grads(X, y)
    assert J1 == J2
    for key in g1:
        np.testing.assert_array_equal(g1[key], g2[key])
        assert g1[key] is not g2[key]  # fresh arrays: the caller's copy is never overwritten


def test_grads_written_into_given_buffers() -> None:
    net, X, y = random_network_problem([5, 8, 3], "relu", "softmax_cross_entropy", n=9, seed=2)
    buffers = {k: np.full_like(p, np.nan) for k, p in net.params.items()}
    _, grads = net.loss_and_grads(X, y, grads=buffers)
    _, fresh = net.loss_and_grads(X, y)
    assert grads is buffers
    for key in grads:
        np.testing.assert_array_equal(grads[key], fresh[key])


def test_float32_stays_float32_and_matches_float64() -> None:
    net64, X, y = random_network_problem([12, 16, 4], "relu", "softmax_cross_entropy", n=20)
    net32 = MLP([12, 16, 4], dtype=np.float32)
    net32.params = {k: v.astype(np.float32) for k, v in net64.params.items()}
    J32, g32 = net32.loss_and_grads(X.astype(np.float32), y)
    _, g64 = net64.loss_and_grads(X, y)
    assert isinstance(J32, float)
    for key in g32:
        assert g32[key].dtype == np.float32
        assert net32.params[key].dtype == np.float32
        assert relative_error(g32[key], g64[key]) <= 1e-5
    assert net32.forward(X).dtype == np.float32
    assert all(b.dtype == np.float32 for buf in net32._buffers.values() for b in buf.Z + buf.A)


def test_forward_predict_and_proba() -> None:
    net, X, _ = random_network_problem([5, 8, 3], "tanh", "softmax_cross_entropy", n=30)
    scores = net.forward(X)
    assert scores.shape == (30, 3)
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), scores.argmax(axis=1))
    # The lean forward pass agrees with the training pass's scores (same math, no cache).
    p_manual = np.exp(scores - scores.max(1, keepdims=True))
    np.testing.assert_allclose(proba, p_manual / p_manual.sum(1, keepdims=True), rtol=1e-12)


def test_forward_in_chunks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    import backprop.network as network

    net, X, _ = random_network_problem([5, 8, 3], "relu", "squared_error", n=50)
    whole = net.forward(X)
    monkeypatch.setattr(network, "_PREDICT_CHUNK", 7)
    np.testing.assert_array_equal(net.forward(X), whole)


def test_regression_predict_shape_is_fixed_by_the_network() -> None:
    one = MLP([3, 4, 1], loss="squared_error")
    two = MLP([3, 4, 2], loss="squared_error")
    for n in (1, 5):
        assert one.predict(np.zeros((n, 3))).shape == (n,)
        assert two.predict(np.zeros((n, 3))).shape == (n, 2)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_overflow_warnings_for_huge_inputs(activation: str, dtype: type) -> None:
    net = MLP([2, 3, 2], activation=activation, dtype=dtype)
    X = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            J, grads = net.loss_and_grads(X, np.array([0, 1]))
            net.predict_proba(X)
    assert np.isfinite(J)
    assert all(np.isfinite(g).all() for g in grads.values())


def test_initialisation_is_seeded_he_for_relu() -> None:
    a, b, c = MLP([400, 300, 10], seed=1), MLP([400, 300, 10], seed=1), MLP([400, 300, 10], seed=2)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    assert a.params["W1"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)  # He
    assert not a.params["b1"].any()
    tanh = MLP([400, 300, 10], activation="tanh")
    limit = np.sqrt(6 / 700)  # Glorot uniform
    assert np.abs(tanh.params["W1"]).max() <= limit
    assert tanh.params["W1"].std() == pytest.approx(limit / np.sqrt(3), rel=0.02)


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.zeros(4), [0], "must be 2-D"),
        (np.zeros((2, 5)), [0, 1], "5 features per row but the network expects 4"),
        (np.zeros((0, 4)), [], "no rows"),
        (np.array([[0, 0, np.nan, 0], [0, 0, 0, np.inf]]), [0, 1], "2 NaN or infinite"),
        (np.zeros((3, 4)), [0, 1], "y has 2 entries but X has 3 rows"),
        (np.zeros((2, 4)), [0, 3], "out of range"),
        (np.zeros((2, 4)), [-1, 0], "out of range"),
        (np.zeros((2, 4)), [0.5, 1.0], "must be integers"),
        (np.array([["a"] * 4]), [0], "real numbers"),
    ],
)
def test_bad_input_raises_clear_value_error(X: object, y: object, message: str) -> None:
    net = MLP([4, 3, 3])
    with pytest.raises(ValueError, match=message):
        net.loss_and_grads(X, y)


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.zeros((2, 3)), r"shape \(2, 2\)"),
        (np.array([[1.0, 2.0], [np.nan, 0.0]]), "NaN or inf"),
    ],
)
def test_bad_regression_targets(y: np.ndarray, message: str) -> None:
    net = MLP([4, 3, 2], loss="squared_error")
    with pytest.raises(ValueError, match=message):
        net.loss_and_grads(np.zeros((2, 4)), y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layer_sizes": [4]}, "at least an input and an output"),
        ({"layer_sizes": [4, 0, 2]}, "at least 1"),
        ({"layer_sizes": [4, 2.5, 2]}, "whole numbers"),
        ({"layer_sizes": [4, 3, 2], "activation": "swish"}, "unknown activation 'swish'"),
        ({"layer_sizes": [4, 3, 2], "loss": "hinge"}, "unknown loss 'hinge'"),
        ({"layer_sizes": [4, 3, 1]}, "at least 2 output classes"),
        ({"layer_sizes": [4, 3, 2], "dtype": np.int32}, "float32 or float64"),
    ],
)
def test_bad_construction(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MLP(**kwargs)  # type: ignore[arg-type]
