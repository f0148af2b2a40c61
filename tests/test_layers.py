"""Layers as forward/backward pairs: each backward checked against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from backprop.gradcheck import numerical_gradient, relative_error
from backprop.layers import (
    ACTIVATIONS,
    activation_backward,
    activation_forward,
    affine_backward,
    affine_forward,
    get_activation,
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
