"""Layers as forward/backward pairs with explicit caches (notes pages 2-3 and 6-7).

Each layer of the notes is a function forward(x) -> (out, cache) and a function
backward(dout, cache) -> gradients, in the notes' "in practice" row layout (page 7):
one example per row, weights stored (fan_in, fan_out).

- Affine: Z = X W + 1_n b (page 7), with dJ/dW = X^T dJ/dZ, dJ/db = 1_n^T dJ/dZ and
  dJ/dX = dJ/dZ W^T.
- Activations: A = f(Z) elementwise, with dJ/dZ = dJ/dA * f'(Z) (page 2, "RELU'"); the
  cache keeps both Z and A: the notes' Alg 3 computes z, a and s first and then uses
  relu'(z) for delta(1) and a^T for dJ/dW(2), and f' is cheapest from one or the other.

Activations form a registry, ``ACTIVATIONS`` (name -> `Activation`): each entry holds f,
f', the initialisation of the weights that feed it (initialiser and gain) and optionally a
fused f/f' pass. The engine (`backprop.network.MLP`) calls the same entries with ``out=``
buffers so that its hot path allocates nothing, and never compares names: a new
activation is one entry here. Entries must pickle (module-level functions, not lambdas),
because an `MLP` holds its entry and scikit-learn pickles estimators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from backprop.checks import check_choice

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Initializer",
    "activation_backward",
    "activation_forward",
    "affine_backward",
    "affine_forward",
    "get_activation",
    "glorot_uniform",
    "he_normal",
]


# ------------------------------------------------------------------ initialisations
# An initialiser draws W of shape (fan_in, fan_out) with variance proportional to the
# activation's ``gain``; biases start at 0 (`MLP.init_params`).

Initializer = Callable[[np.random.Generator, int, int, float], np.ndarray]


def he_normal(rng: np.random.Generator, fan_in: int, fan_out: int, gain: float) -> np.ndarray:
    """W ~ N(0, gain / fan_in): He et al. (2015) for ReLU with gain 2.

    Keeps the variance of the pre-activations the same from layer to layer when f halves
    it (ReLU zeroes half of its inputs).

    Parameters
    ----------
    rng : numpy.random.Generator
    fan_in, fan_out : int
        Shape of W, stored (fan_in, fan_out) as on page 7 of the notes.
    gain : float
        Variance gain (PyTorch's ``calculate_gain`` is its square root).

    Returns
    -------
    W : ndarray of shape (fan_in, fan_out), float64
    """
    return rng.normal(0.0, np.sqrt(gain / fan_in), size=(fan_in, fan_out))


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int, gain: float) -> np.ndarray:
    """W ~ U(-limit, limit), limit = sqrt(gain * 6 / (fan_in + fan_out)) (Glorot & Bengio).

    Parameters
    ----------
    rng : numpy.random.Generator
    fan_in, fan_out : int
        Shape of W.
    gain : float
        Variance gain (1 for tanh, sigmoid and identity).

    Returns
    -------
    W : ndarray of shape (fan_in, fan_out), float64
    """
    limit = np.sqrt(gain * 6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


# ------------------------------------------------------------------ activations


@dataclass(frozen=True)
class Activation:
    """An elementwise activation f: its values, its derivative and how to start its weights.

    Everything the engine (`backprop.network.MLP`) needs to know about an activation is
    here, so a new one is one `ACTIVATIONS` entry: the network never asks for a name.

    Attributes
    ----------
    name : str
        Its key in ``ACTIVATIONS``.
    f : callable
        ``f(z, out)`` writes f(z) into ``out`` (which may be ``z`` itself).
    f_prime : callable
        ``f_prime(z, a, out)`` writes f'(z) into ``out`` (never ``z`` or ``a``), computed
        from z or from a = f(z), whichever is cheaper.
    gain : float
        Variance gain of the weight initialisation of the layer that feeds f.
    init : callable, default `glorot_uniform`
        ``init(rng, fan_in, fan_out, gain) -> W``.
    f_and_f_prime : callable or None, default None
        Optional fused pass ``f_and_f_prime(z, a_out, fprime_out)`` that writes f(z) and
        f'(z) together when that is cheaper than f now and f' in the backward pass (ReLU:
        the mask 1{z > 0} gives both). The training pass then keeps f'(z) from the forward
        pass. Must give the same f(z) and f'(z) as ``f`` and ``f_prime``.
    kink_at_zero : bool, default False
        f' jumps at z = 0 (ReLU): a finite-difference check must keep |z| away from 0.
    fused_kernel : str or None, default None
        Name of a `backprop.kernels` kernel ``k(Z, b, A, F)`` that adds the bias to Z and
        does ``f_and_f_prime`` in the same pass (used when the network runs fused; it must
        give what ``Z += b`` and ``f_and_f_prime`` give).
    """

    name: str
    f: Callable[[np.ndarray, np.ndarray], object]
    f_prime: Callable[[np.ndarray, np.ndarray, np.ndarray], object]
    gain: float = 1.0
    init: Initializer = glorot_uniform
    f_and_f_prime: Callable[[np.ndarray, np.ndarray, np.ndarray], object] | None = None
    kink_at_zero: bool = False
    fused_kernel: str | None = None

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
        self.f(z, out)
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
        self.f_prime(z, a, out)
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

    def init_weights(self, rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
        """Draw the initial W of shape (fan_in, fan_out) of a layer that feeds f.

        Returns
        -------
        W : ndarray of shape (fan_in, fan_out), float64
        """
        return self.init(rng, fan_in, fan_out, self.gain)


def _relu(z: np.ndarray, out: np.ndarray) -> None:
    np.maximum(z, 0, out=out)


def _relu_prime(z: np.ndarray, a: np.ndarray, out: np.ndarray) -> None:
    np.greater(z, 0, out=out)  # ReLU'(z) = 1{z > 0} (page 2)


def _relu_and_mask(z: np.ndarray, a: np.ndarray, fprime: np.ndarray) -> None:
    # ReLU'(z) = 1{z > 0} (page 2) as a float mask, then a = z * mask: two fast passes that
    # also give the backward pass its f'(z) for free (np.maximum is slower than both
    # together on current NumPy). Only a pre-activation of -inf (after overflow) differs
    # from `_relu`: it gives NaN, not 0, which the training loop's divergence check
    # reports anyway.
    np.greater(z, 0, out=fprime)
    np.multiply(z, fprime, out=a)


def _tanh(z: np.ndarray, out: np.ndarray) -> None:
    np.tanh(z, out=out)


def _tanh_prime(z: np.ndarray, a: np.ndarray, out: np.ndarray) -> None:
    np.multiply(a, a, out=out)  # tanh'(z) = 1 - tanh(z)^2 = 1 - a^2
    np.subtract(1, out, out=out)


def _sigmoid(z: np.ndarray, out: np.ndarray) -> None:
    # sigma(z) = (1 + tanh(z/2)) / 2: the same function, but tanh never overflows,
    # whereas 1 / (1 + exp(-z)) warns for z = -1000.
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5


def _sigmoid_prime(z: np.ndarray, a: np.ndarray, out: np.ndarray) -> None:
    np.subtract(1, a, out=out)  # sigma'(z) = sigma(z) (1 - sigma(z)) = a (1 - a)
    out *= a


def _identity(z: np.ndarray, out: np.ndarray) -> None:
    np.copyto(out, z)


def _identity_prime(z: np.ndarray, a: np.ndarray, out: np.ndarray) -> None:
    out.fill(1)


# The registry: name -> Activation. `MLP`, `TrainConfig`, the model file and the CLI's
# --activation choices all read it, so a new activation is one entry here (and its test).
ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(
        "relu",
        f=_relu,
        f_prime=_relu_prime,
        gain=2.0,
        init=he_normal,
        f_and_f_prime=_relu_and_mask,
        kink_at_zero=True,
        fused_kernel="bias_relu_mask",
    ),
    "tanh": Activation("tanh", f=_tanh, f_prime=_tanh_prime),
    "sigmoid": Activation("sigmoid", f=_sigmoid, f_prime=_sigmoid_prime),
    "identity": Activation("identity", f=_identity, f_prime=_identity_prime),
}


def get_activation(name: str) -> Activation:
    """Look up an activation by name, with an error that lists the valid names.

    Raises
    ------
    OptionError
        ``"unknown activation 'gelu'; choose one of relu, tanh, sigmoid, identity"``.
    """
    return ACTIVATIONS[check_choice("activation", name, ACTIVATIONS)]


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
    """A = f(Z), keeping both Z and A in the cache (Alg 3 uses both in the backward pass).

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
