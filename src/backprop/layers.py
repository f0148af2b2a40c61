"""Layers as forward/backward pairs with explicit caches (notes pages 2-3 and 6-7).

Each layer of the notes is a function forward(x) -> (out, cache) and a function
backward(dout, cache) -> gradients, in the notes' "in practice" row layout (page 7):
one example per row, weights stored (fan_in, fan_out).

- Affine: Z = X W + 1_n b (page 7), with dJ/dW = X^T dJ/dZ, dJ/db = 1_n^T dJ/dZ and
  dJ/dX = dJ/dZ W^T.
- Activations: A = f(Z) elementwise, with dJ/dZ = dJ/dA * f'(Z) (page 2, "RELU'"); the
  cache keeps both Z and A, as the notes do, because f' is cheapest from one or the other.

The engine (`backprop.network.MLP`) calls the same activation objects with ``out=``
buffers so that its hot path allocates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "activation_backward",
    "activation_forward",
    "affine_backward",
    "affine_forward",
    "get_activation",
]


@dataclass(frozen=True)
class Activation:
    """An elementwise activation f with its derivative.

    Attributes
    ----------
    name : str
        Its name in ``ACTIVATIONS``.
    gain : float
        The factor by which the initial weight scale is multiplied (He for ReLU: 2).
    """

    name: str
    gain: float

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Compute a = f(z) elementwise.

        Parameters
        ----------
        z : ndarray of shape (n, m)
            Pre-activations.
        out : ndarray of shape (n, m), optional
            Where to write a; may be ``z`` itself.

        Returns
        -------
        a : ndarray of shape (n, m)
        """
        if out is None:
            out = np.empty_like(z)
        if self.name == "relu":
            np.maximum(z, 0, out=out)
        elif self.name == "tanh":
            np.tanh(z, out=out)
        elif self.name == "sigmoid":
            # sigma(z) = (1 + tanh(z/2)) / 2: the same function, but tanh never overflows,
            # whereas 1 / (1 + exp(-z)) warns for z = -1000.
            np.multiply(z, 0.5, out=out)
            np.tanh(out, out=out)
            out += 1
            out *= 0.5
        elif self.name == "identity":
            np.copyto(out, z)
        return out

    def derivative(self, z: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Compute f'(z), from z or from a = f(z), whichever is cheaper.

        Parameters
        ----------
        z : ndarray of shape (n, m)
            The pre-activations the forward pass saw.
        a : ndarray of shape (n, m)
            The activations it produced.
        out : ndarray of shape (n, m), optional
            Where to write f'(z); must not be ``z`` or ``a``.

        Returns
        -------
        fprime : ndarray of shape (n, m)
        """
        if out is None:
            out = np.empty_like(z)
        if self.name == "relu":
            np.greater(z, 0, out=out)  # ReLU'(z) = 1{z > 0} (page 2)
        elif self.name == "tanh":
            np.multiply(a, a, out=out)  # tanh'(z) = 1 - tanh(z)^2 = 1 - a^2
            np.subtract(1, out, out=out)
        elif self.name == "sigmoid":
            np.subtract(1, a, out=out)  # sigma'(z) = sigma(z) (1 - sigma(z)) = a (1 - a)
            out *= a
        elif self.name == "identity":
            out.fill(1)
        return out

    def backward(self, dJ_da: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """Compute dJ/dz = dJ/da * f'(z) (notes page 2: "dJ/dz = dJ/da ⊙ RELU'(z)").

        Parameters
        ----------
        dJ_da : ndarray of shape (n, m)
            Gradient of the loss with respect to the activations.
        z : ndarray of shape (n, m)
            The pre-activations the forward pass saw.
        a : ndarray of shape (n, m)
            The activations it produced.

        Returns
        -------
        dJ_dz : ndarray of shape (n, m)
        """
        return dJ_da * self.derivative(z, a)


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("relu", gain=2.0),
    "tanh": Activation("tanh", gain=1.0),
    "sigmoid": Activation("sigmoid", gain=1.0),
    "identity": Activation("identity", gain=1.0),
}


def get_activation(name: str) -> Activation:
    """Look up an activation by name, with an error that lists the valid names."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None


AffineCache = tuple[np.ndarray, np.ndarray]
ActivationCache = tuple[Activation, np.ndarray, np.ndarray]


def affine_forward(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, AffineCache]:
    """Z = X W + 1_n b (notes page 7).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs, one example per row.
    W : ndarray of shape (d, m)
        Weights, stored (fan_in, fan_out).
    b : ndarray of shape (m,)
        Bias, broadcast to every row (the notes' 1_n b).

    Returns
    -------
    Z : ndarray of shape (n, m)
    cache : tuple
        ``(X, W)``, what `affine_backward` needs.
    """
    return X @ W + b, (X, W)


def affine_backward(
    dJ_dZ: np.ndarray, cache: AffineCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of Z = X W + 1_n b (notes page 7).

    Parameters
    ----------
    dJ_dZ : ndarray of shape (n, m)
        Upstream gradient.
    cache : tuple
        ``(X, W)`` from `affine_forward`.

    Returns
    -------
    dJ_dX : ndarray of shape (n, d)
        dJ/dZ W^T.
    dJ_dW : ndarray of shape (d, m)
        X^T dJ/dZ.
    dJ_db : ndarray of shape (m,)
        1_n^T dJ/dZ: the column sums.
    """
    X, W = cache
    return dJ_dZ @ W.T, X.T @ dJ_dZ, dJ_dZ.sum(axis=0)


def activation_forward(Z: np.ndarray, name: str) -> tuple[np.ndarray, ActivationCache]:
    """A = f(Z), keeping both Z and A in the cache as the notes do.

    Parameters
    ----------
    Z : ndarray of shape (n, m)
    name : str
        One of ``ACTIVATIONS``.

    Returns
    -------
    A : ndarray of shape (n, m)
    cache : tuple
        ``(activation, Z, A)``.
    """
    act = get_activation(name)
    A = act.forward(Z)
    return A, (act, Z, A)


def activation_backward(dJ_dA: np.ndarray, cache: ActivationCache) -> np.ndarray:
    """dJ/dZ = dJ/dA * f'(Z) (notes page 2).

    Parameters
    ----------
    dJ_dA : ndarray of shape (n, m)
    cache : tuple
        ``(activation, Z, A)`` from `activation_forward`.

    Returns
    -------
    dJ_dZ : ndarray of shape (n, m)
    """
    act, Z, A = cache
    return act.backward(dJ_dA, Z, A)
