"""Layers as forward/backward pairs: each backward checked against finite differences."""

from __future__ import annotations

import pickle
from functools import partial

import numpy as np
import pytest

from backprop.gradcheck import numerical_gradient, relative_error
from backprop.layers import (
    ACTIVATIONS,
    Activation,
    activation_backward,
    activation_forward,
    affine_backward,
    affine_forward,
    get_activation,
    he_normal,
)

RNG = np.random.default_rng(0)


def test_affine_forward_is_xw_plus_b() -> None:
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # (n=3, d=2)
    W = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])  # (d=2, m=3)
    b = np.array([0.5, -0.5, 0.0])
    Z, _ = affine_forward(X, W, b)
    # row 0: [1*1 + 2*2, 1*0 + 2*1, -1*1 + 0] + b = [5.5, 1.5, -1]
    np.testing.assert_allclose(Z[0], [5.5, 1.5, -1.0])
    np.testing.assert_allclose(Z, X @ W + b)


def test_affine_backward_matches_finite_differences() -> None:
    X, W, b = RNG.normal(size=(6, 4)), RNG.normal(size=(4, 5)), RNG.normal(size=5)
    G = RNG.normal(size=(6, 5))  # upstream dJ/dZ, with J = sum(G * Z)

    def J() -> float:
        return float(np.sum(G * affine_forward(X, W, b)[0]))

    dX, dW, db = affine_backward(G, affine_forward(X, W, b)[1])
    assert (dX.shape, dW.shape, db.shape) == (X.shape, W.shape, b.shape)
    for analytic, param in ((dX, X), (dW, W), (db, b)):
        assert relative_error(analytic, numerical_gradient(J, param)) <= 1e-9


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_backward_matches_finite_differences(name: str) -> None:
    Z = RNG.normal(size=(5, 4))
    Z[np.abs(Z) < 1e-3] = 0.5  # keep away from ReLU's kink
    G = RNG.normal(size=Z.shape)

    def J() -> float:
        return float(np.sum(G * activation_forward(Z, name)[0]))

    dZ = activation_backward(G, activation_forward(Z, name)[1])
    assert relative_error(dZ, numerical_gradient(J, Z)) <= 1e-9


@pytest.mark.parametrize(
    ("name", "z", "expected_a", "expected_fprime"),
    [
        ("relu", [-2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [0.0, 0.0, 1.0]),
        ("tanh", [0.0], [0.0], [1.0]),
        ("sigmoid", [0.0, np.log(3.0)], [0.5, 0.75], [0.25, 0.1875]),
        ("identity", [-2.0, 5.0], [-2.0, 5.0], [1.0, 1.0]),
    ],
)
def test_activation_values_by_hand(
    name: str, z: list[float], expected_a: list[float], expected_fprime: list[float]
) -> None:
    act = get_activation(name)
    Z = np.array([z])
    A = act.forward(Z)
    np.testing.assert_allclose(A, [expected_a], atol=1e-15)
    np.testing.assert_allclose(act.derivative(Z, A), [expected_fprime], atol=1e-15)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_in_place_forward_equals_out_of_place(name: str) -> None:
    act = get_activation(name)
    Z = RNG.normal(size=(3, 4)).astype(np.float32)
    expected = act.forward(Z)
    act.forward(Z, out=Z)
    np.testing.assert_array_equal(Z, expected)
    assert Z.dtype == np.float32


def test_sigmoid_does_not_overflow() -> None:
    with np.errstate(all="raise"):
        a = get_activation("sigmoid").forward(np.array([-1000.0, 1000.0], dtype=np.float32))
    np.testing.assert_array_equal(a, [0.0, 1.0])


def test_unknown_activation_lists_choices() -> None:
    with pytest.raises(ValueError, match="relu, tanh, sigmoid, identity"):
        get_activation("gelu")


# ---------------------------------------------------------------- the registry


def _leaky_relu(slope: float = 0.1) -> Activation:
    """A new activation, defined only here: the registry entry is all it takes."""

    def f(z: np.ndarray, out: np.ndarray) -> None:
        np.multiply(z, np.where(z > 0, 1.0, slope).astype(z.dtype), out=out)

    def f_prime(z: np.ndarray, a: np.ndarray, out: np.ndarray) -> None:
        out[...] = np.where(z > 0, 1.0, slope)

    return Activation(
        "leaky_relu",
        f=f,
        f_prime=f_prime,
        gain=2.0 / (1.0 + slope**2),  # He et al. (2015), eq. 15 with a = slope
        init=he_normal,
        kink_at_zero=True,
    )


@pytest.fixture
def leaky(monkeypatch: pytest.MonkeyPatch) -> Activation:
    act = _leaky_relu()
    monkeypatch.setitem(ACTIVATIONS, act.name, act)  # unregistered again after the test
    return act


def test_a_new_activation_is_one_registry_entry(leaky: Activation) -> None:
    from backprop import MLP
    from backprop.config import TrainConfig
    from backprop.gradcheck import check_gradients, random_network_problem
    from backprop.optim import make_optimizer

    TrainConfig(activation="leaky_relu").validate()  # the config's choices are the registry's
    for loss in ("softmax_cross_entropy", "squared_error"):
        net, X, y = random_network_problem([6, 5, 4, 3], "leaky_relu", loss, n=9, seed=1)
        _, grads = net.loss_and_grads(X, y)
        errors = check_gradients(partial(net.compute_loss, X, y), net.params, grads)
        assert max(errors.values()) <= 1e-7, errors
    # Its hidden units pass negative inputs on with slope 0.1: f(-2) = -0.2, f'(-2) = 0.1.
    net = MLP([1, 1, 2], activation="leaky_relu", dtype=np.float64)
    net.params.update(W1=np.array([[1.0]]), b1=np.zeros(1), W2=np.array([[1.0, 0.0]]))
    np.testing.assert_allclose(net.forward(np.array([[-2.0]])), [[-0.2, 0.0]])
    _, g = net.loss_and_grads(np.array([[-2.0]]), np.array([0]))
    # dJ/ds_0 = p_0 - 1 with p = softmax(-0.2, 0); dJ/dW1 = x * f'(z) * W2[0, 0] * dJ/ds_0.
    p0 = np.exp(-0.2) / (np.exp(-0.2) + 1.0)
    np.testing.assert_allclose(g["W1"], [[-2.0 * 0.1 * (p0 - 1.0)]])
    # And it trains: Adam steps on a separable problem drive the loss down.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    net = MLP([4, 16, 2], activation="leaky_relu", dtype=np.float64, seed=0)
    opt = make_optimizer("adam", net.params, lr=0.05)
    first = net.compute_loss(X, y)
    for _ in range(100):
        opt.step(net.loss_and_grads(X, y)[1])
    assert net.compute_loss(X, y) < 0.1 * first


def test_unregistered_activation_is_refused_again() -> None:
    from backprop.config import TrainConfig

    assert "leaky_relu" not in ACTIVATIONS
    with pytest.raises(ValueError, match="unknown activation 'leaky_relu'; choose one of relu"):
        TrainConfig(activation="leaky_relu").validate()


def test_network_reads_the_entry_not_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of ReLU under another name initialises and trains bit for bit like ReLU,
    with the fused f/f' pass or without it."""
    from dataclasses import replace

    from backprop import MLP

    relu = ACTIVATIONS["relu"]
    monkeypatch.setitem(ACTIVATIONS, "ramp", replace(relu, name="ramp"))
    monkeypatch.setitem(ACTIVATIONS, "ramp2", replace(relu, name="ramp2", f_and_f_prime=None))
    X = RNG.normal(size=(10, 6)).astype(np.float32)
    y = RNG.integers(0, 3, 10)
    ref = MLP([6, 8, 5, 3], activation="relu", seed=4)
    J_ref, g_ref = ref.loss_and_grads(X, y)
    for name in ("ramp", "ramp2"):
        net = MLP([6, 8, 5, 3], activation=name, seed=4)
        for k in ref.params:
            np.testing.assert_array_equal(net.params[k], ref.params[k])
        J, g = net.loss_and_grads(X, y)
        assert J == J_ref
        for k in g_ref:
            np.testing.assert_array_equal(g[k], g_ref[k])


def test_initialisation_follows_the_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gain and the initialiser come from the registry: a tanh with He's gain 2 gets
    Glorot uniform weights sqrt(2) times wider, and ReLU with gain 1 narrower ones."""
    from dataclasses import replace

    from backprop import MLP

    monkeypatch.setitem(ACTIVATIONS, "tanh2", replace(ACTIVATIONS["tanh"], name="tanh2", gain=2.0))
    W = MLP([300, 400, 10], activation="tanh2", seed=0).params["W1"]
    limit = np.sqrt(2.0 * 6.0 / 700)
    assert np.abs(W).max() <= limit
    assert W.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    monkeypatch.setitem(ACTIVATIONS, "relu1", replace(ACTIVATIONS["relu"], name="relu1", gain=1.0))
    W = MLP([400, 300, 10], activation="relu1", seed=0).params["W1"]
    assert W.std() == pytest.approx(np.sqrt(1.0 / 400), rel=0.02)


@pytest.mark.parametrize("name", [n for n, a in ACTIVATIONS.items() if a.f_and_f_prime])
def test_fused_pass_agrees_with_f_and_f_prime(name: str) -> None:
    act = get_activation(name)
    assert act.f_and_f_prime is not None
    Z = RNG.normal(size=(4, 5))
    A, F = np.empty_like(Z), np.empty_like(Z)
    act.f_and_f_prime(Z, A, F)
    np.testing.assert_array_equal(A, act.forward(Z))
    np.testing.assert_array_equal(F, act.derivative(Z, act.forward(Z)))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_registered_activations_pickle(name: str) -> None:
    """An `MLP` holds its entry and scikit-learn pickles estimators: entries must pickle
    (module-level functions, not lambdas)."""
    from backprop import MLP

    net = MLP([3, 4, 2], activation=name, seed=0)
    clone = pickle.loads(pickle.dumps(net))
    X = RNG.normal(size=(5, 3))
    np.testing.assert_array_equal(clone.forward(X), net.forward(X))
    np.testing.assert_array_equal(
        clone.loss_and_grads(X, [0, 1, 0, 1, 1])[1]["W1"],
        net.loss_and_grads(X, [0, 1, 0, 1, 1])[1]["W1"],
    )
