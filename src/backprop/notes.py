"""The notes, literally: the two-layer network's gradients in the notes' three forms.

Every line below sits next to the equation of the backpropagation lecture notes it
implements (page numbers are the notes' circled page numbers; their mistakes are fixed and
listed in ``docs/errata.md``).

Column forms (pages 1-6), parameters as the notes write them:
    W1 : (m, d),  b1 : (m, 1),  W2 : (c, m),  b2 : (c, 1)   (c = 1 for regression)

- ``*_example``: one example x of shape (d, 1) (pages 1-4, "Alg 3").
- ``*_batch``: n examples as the columns of X, shape (d, n) (pages 5-6).
- ``*_batch_rows``: "in practice" (its X and Z at the foot of page 6, the equations on
  page 7), X of shape (n, d), with
    W1 : (d, m),  b1 : (1, m),  W2 : (m, c),  b2 : (1, c).

Pages 5-7 treat the softmax only: ``regression_batch`` and ``regression_batch_rows`` are
this project's extension of page 2's network to a batch, and their J = 1/(2n) sum (the
mean of page 2's per-example loss) is this project's choice.

Each function returns ``(J, grads)`` where grads has keys "W1", "b1", "W2", "b2", each
shaped exactly like its parameter. J is 1/2 (y - o)^2 or -log p_y for one example and the
mean over the n examples for a batch. These functions are written for reading, not speed:
`backprop.MLP` is the engine, and the tests prove the two agree.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "classification_batch",
    "classification_batch_rows",
    "classification_example",
    "dJ_ds",
    "dJ_ds_as_written",
    "regression_batch",
    "regression_batch_rows",
    "regression_example",
    "relu",
    "relu_prime",
]

Grads = dict[str, np.ndarray]
ScoreGrad = Callable[[np.ndarray, int], np.ndarray]


def relu(z: np.ndarray) -> np.ndarray:
    """ReLU(z) = max(z, 0), elementwise (page 1)."""
    return np.maximum(z, 0.0)


def relu_prime(z: np.ndarray) -> np.ndarray:
    """ReLU'(z) = 1{z > 0}, elementwise (page 2)."""
    return (z > 0).astype(z.dtype)


def _log_softmax_columns(S: np.ndarray) -> np.ndarray:
    """log p = s - log sum_j e^{s_j} down each column.

    Shifting by the column max keeps every exponent <= 0 (no overflow), and taking log p
    this way, rather than log of p, stays finite when p_y underflows to 0.
    """
    shifted = S - S.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


def dJ_ds(p: np.ndarray, y: int) -> np.ndarray:
    """Corrected page 3: dJ/ds_k = p_k - 1{k = y}.

    Parameters
    ----------
    p : ndarray of shape (c, 1)
        Softmax probabilities of one example.
    y : int
        Its class.

    Returns
    -------
    ndarray of shape (c, 1)
    """
    grad = p.copy()
    grad[y] -= 1.0
    return grad


def dJ_ds_as_written(p: np.ndarray, y: int) -> np.ndarray:
    """Page 3 exactly as the notes write it: p_k for k = y and p_k - 1 for k != y.

    This is wrong (the cases are swapped); it is kept so that the tests and
    ``backprop gradcheck`` can show the finite-difference check rejecting it.

    Parameters
    ----------
    p : ndarray of shape (c, 1)
    y : int

    Returns
    -------
    ndarray of shape (c, 1)
    """
    grad = p - 1.0
    grad[y] = p[y]
    return grad


# --------------------------------------------------------------------- one example
def _alg3_example(
    x: np.ndarray, z: np.ndarray, a: np.ndarray, W2: np.ndarray, delta2: np.ndarray
) -> Grads:
    """Alg 3 (page 4) from delta(2) = dJ/ds (or dJ/do) on: the four gradients."""
    delta1 = (W2.T @ delta2) * relu_prime(z)  # delta(1) = (W(2)^T delta(2)) ⊙ ReLU'(z)   m x 1
    return {
        "W1": delta1 @ x.T,  # dJ/dW(1) = delta(1) x^T                                     m x d
        "b1": delta1,  # dJ/db(1) = delta(1)                                               m x 1
        "W2": delta2 @ a.T,  # dJ/dW(2) = delta(2) a^T                                     c x m
        "b2": delta2,  # dJ/db(2) = delta(2)                                               c x 1
    }


def regression_example(
    x: np.ndarray, y: float, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> tuple[float, Grads]:
    """Pages 1-3: squared loss of one example and its gradients.

    Parameters
    ----------
    x : ndarray of shape (d, 1)
    y : float
        The target.
    W1 : ndarray of shape (m, d)
    b1 : ndarray of shape (m, 1)
    W2 : ndarray of shape (1, m)
    b2 : ndarray of shape (1, 1)

    Returns
    -------
    J : float
        1/2 (y - o)^2.
    grads : dict
        "W1" (m, d), "b1" (m, 1), "W2" (1, m), "b2" (1, 1).
    """
    z = W1 @ x + b1  # z = W(1) x + b(1)           m x 1 = (m x d)(d x 1) + m x 1
    a = relu(z)  # a = ReLU(z)
    o = W2 @ a + b2  # o = W(2) a + b(2)          1 x 1
    J = 0.5 * float((y - o[0, 0]) ** 2)  # J = 1/2 (y - o)^2
    dJ_do = o - y  # dJ/do = o - y; then dJ/dW(2) = (o - y) a^T, dJ/da = W(2)^T (o - y)
    return J, _alg3_example(x, z, a, W2, dJ_do)


def classification_example(
    x: np.ndarray,
    y: int,
    W1: np.ndarray,
    b1: np.ndarray,
    W2: np.ndarray,
    b2: np.ndarray,
    score_grad: ScoreGrad = dJ_ds,
) -> tuple[float, Grads]:
    """Pages 3-4 and Alg 3: softmax cross-entropy of one example and its gradients.

    Parameters
    ----------
    x : ndarray of shape (d, 1)
    y : int
        The class, in ``0 .. c-1``.
    W1 : ndarray of shape (m, d)
    b1 : ndarray of shape (m, 1)
    W2 : ndarray of shape (c, m)
    b2 : ndarray of shape (c, 1)
    score_grad : callable, default `dJ_ds`
        dJ/ds from (p, y); pass `dJ_ds_as_written` to reproduce the notes' typo.

    Returns
    -------
    J : float
        -log p_y (the notes write -log p_k).
    grads : dict
        "W1" (m, d), "b1" (m, 1), "W2" (c, m), "b2" (c, 1).
    """
    z = W1 @ x + b1  # z = W(1) x + b(1)           m x 1
    a = relu(z)  # a = ReLU(z)                     m x 1
    s = W2 @ a + b2  # s = W(2) a + b(2)          c x 1 = (c x m)(m x 1) + c x 1
    log_p = _log_softmax_columns(s)  # log p_k = s_k - log sum_j e^{s_j}
    p = np.exp(log_p)  # p_k = e^{s_k} / sum_j e^{s_j}
    J = -float(log_p[y, 0])  # J = -log p_y
    delta2 = score_grad(p, y)  # delta(2) = dJ/ds = p - e_y
    return J, _alg3_example(x, z, a, W2, delta2)


# --------------------------------------------------------------- a batch in columns
def _alg3_batch(
    X: np.ndarray, Z: np.ndarray, A: np.ndarray, W2: np.ndarray, delta2: np.ndarray
) -> Grads:
    """Alg 3 of page 6 from delta(2) = dJ/dS (c x n) on."""
    ones_n = np.ones((X.shape[1], 1))  # 1_n (the notes write 1_m)
    dJ_dA = W2.T @ delta2  # dJ/dA = W(2)^T dJ/dS                                     m x n
    delta1 = dJ_dA * relu_prime(Z)  # delta(1) = dJ/dZ = dJ/dA ⊙ ReLU'(Z)               m x n
    return {
        "W1": delta1 @ X.T,  # dJ/dW(1) = dJ/dZ X^T                     m x d = (m x n)(n x d)
        "b1": delta1 @ ones_n,  # dJ/db(1) = dJ/dZ 1_n                  m x 1 = (m x n)(n x 1)
        "W2": delta2 @ A.T,  # dJ/dW(2) = dJ/dS A^T                     c x m = (c x n)(n x m)
        "b2": delta2 @ ones_n,  # dJ/db(2) = dJ/dS 1_n                  c x 1 = (c x n)(n x 1)
    }


def _forward_batch(
    X: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Page 5: Z = W(1) X + b(1) 1_n^T, A = ReLU(Z), S = W(2) A + b(2) 1_n^T."""
    ones_n_T = np.ones((1, X.shape[1]))  # 1_n^T (the notes write 1_m^T)
    # Z = W(1) X + b(1) 1_n^T                                m x n = (m x d)(d x n) + (m x 1)(1 x n)
    Z = W1 @ X + b1 @ ones_n_T
    A = relu(Z)  # A = ReLU(Z)                                      m x n
    S = W2 @ A + b2 @ ones_n_T  # S = W(2) A + b(2) 1_n^T          c x n (the notes write c x m)
    return Z, A, S


def regression_batch(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> tuple[float, Grads]:
    """Page 2's squared loss for a batch in page 5's column layout (not in the notes).

    Pages 5-6 treat the softmax only; this is the project's extension, with J the mean of
    the per-example 1/2 (y - o)^2 so that the gradient is the mean of page 2's.

    Parameters
    ----------
    X : ndarray of shape (d, n)
    y : ndarray of shape (n,)
    W1 : ndarray of shape (m, d)
    b1 : ndarray of shape (m, 1)
    W2 : ndarray of shape (1, m)
    b2 : ndarray of shape (1, 1)

    Returns
    -------
    J : float
        1/(2n) sum_i (y_i - o_i)^2.
    grads : dict
        Shaped like the parameters.
    """
    n = X.shape[1]
    Z, A, O = _forward_batch(X, W1, b1, W2, b2)  # O: 1 x n, one output per column
    J = float(np.sum((y - O[0]) ** 2)) / (2 * n)  # J = 1/(2n) sum_i (y_i - o_i)^2
    delta2 = (O - y) / n  # dJ/dO = (O - y^T) / n                  1 x n
    return J, _alg3_batch(X, Z, A, W2, delta2)


def classification_batch(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> tuple[float, Grads]:
    """Pages 5-6 for softmax cross-entropy: n examples as columns.

    Parameters
    ----------
    X : ndarray of shape (d, n)
    y : ndarray of int, shape (n,)
    W1 : ndarray of shape (m, d)
    b1 : ndarray of shape (m, 1)
    W2 : ndarray of shape (c, m)
    b2 : ndarray of shape (c, 1)

    Returns
    -------
    J : float
        -1/n sum_i log p_{y_i}.
    grads : dict
        Shaped like the parameters.
    """
    n = X.shape[1]
    Z, A, S = _forward_batch(X, W1, b1, W2, b2)
    log_P = _log_softmax_columns(S)  # column i holds log p^(i)      c x n
    P = np.exp(log_P)
    examples = np.arange(n)
    J = -float(np.mean(log_P[y, examples]))  # J = -1/n sum_i log p^(i)_{y(i)}
    Y = np.zeros_like(P)
    Y[y, examples] = 1.0  # one-hot columns: Y_ki = 1{k = y(i)}
    delta2 = (P - Y) / n  # dJ/dS_ki = (p^(i)_k - 1{k = y(i)}) / n   c x n
    return J, _alg3_batch(X, Z, A, W2, delta2)


# ------------------------------------------------------------ "in practice": rows
def _alg3_rows(
    X: np.ndarray, Z: np.ndarray, A: np.ndarray, W2: np.ndarray, delta2: np.ndarray
) -> Grads:
    """Page 7's gradients from dJ/dS (n x c) on."""
    ones_n_T = np.ones((1, X.shape[0]))  # 1_n^T (the notes write 1_m)
    dJ_dA = delta2 @ W2.T  # dJ/dA = dJ/dS W[2]^T                            n x m = (n x c)(c x m)
    dJ_dZ = dJ_dA * relu_prime(Z)  # dJ/dZ = dJ/dA ⊙ ReLU'(Z)                  n x m
    return {
        "W1": X.T @ dJ_dZ,  # dJ/dW[1] = X^T dJ/dZ                        d x m = (d x n)(n x m)
        "b1": ones_n_T @ dJ_dZ,  # dJ/db[1] = 1_n^T dJ/dZ                1 x m = (1 x n)(n x m)
        "W2": A.T @ delta2,  # dJ/dW[2] = A^T dJ/dS                       m x c = (m x n)(n x c)
        "b2": ones_n_T @ delta2,  # dJ/db[2] = 1_n^T dJ/dS                1 x c = (1 x n)(n x c)
    }


def _forward_rows(
    X: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Page 7: Z = X W[1] + 1_n b[1], A = ReLU(Z), S = A W[2] + 1_n b[2]."""
    ones_n = np.ones((X.shape[0], 1))  # 1_n
    Z = X @ W1 + ones_n @ b1  # Z = X W[1] + 1_n b[1]     n x m = (n x d)(d x m) + (n x 1)(1 x m)
    A = relu(Z)  # A = ReLU(Z)                             n x m
    S = A @ W2 + ones_n @ b2  # S = A W[2] + 1_n b[2]     n x c = (n x m)(m x c) + (n x 1)(1 x c)
    return Z, A, S


def regression_batch_rows(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> tuple[float, Grads]:
    """Page 2's squared loss for a batch in page 7's row layout (not in the notes).

    Page 7 ("in practice") treats the softmax only; this is the project's extension.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
    W1 : ndarray of shape (d, m)
    b1 : ndarray of shape (1, m)
    W2 : ndarray of shape (m, 1)
    b2 : ndarray of shape (1, 1)

    Returns
    -------
    J : float
        1/(2n) sum_i (y_i - o_i)^2.
    grads : dict
        Shaped like the parameters.
    """
    n = X.shape[0]
    Z, A, O = _forward_rows(X, W1, b1, W2, b2)  # O: n x 1
    J = float(np.sum((y - O[:, 0]) ** 2)) / (2 * n)
    delta2 = (O - y[:, None]) / n  # dJ/dO = (O - y) / n            n x 1
    return J, _alg3_rows(X, Z, A, W2, delta2)


def classification_batch_rows(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> tuple[float, Grads]:
    """Page 7 ("in practice") for softmax cross-entropy: one example per row.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of int, shape (n,)
    W1 : ndarray of shape (d, m)
    b1 : ndarray of shape (1, m)
    W2 : ndarray of shape (m, c)
    b2 : ndarray of shape (1, c)

    Returns
    -------
    J : float
        -1/n sum_i log p_{y_i}.
    grads : dict
        Shaped like the parameters.
    """
    n = X.shape[0]
    Z, A, S = _forward_rows(X, W1, b1, W2, b2)
    log_P = _log_softmax_columns(S.T).T  # row i holds log p^(i)     n x c
    P = np.exp(log_P)
    examples = np.arange(n)
    J = -float(np.mean(log_P[examples, y]))  # J = -1/n sum_i log p^(i)_{y(i)}
    Y = np.zeros_like(P)
    Y[examples, y] = 1.0  # one-hot rows
    delta2 = (P - Y) / n  # dJ/dS_ik = (p^(i)_k - 1{k = y(i)}) / n  n x c
    return J, _alg3_rows(X, Z, A, W2, delta2)
