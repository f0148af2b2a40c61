"""Losses of the notes and their gradients with respect to the network's output.

Page 1 of the notes: squared error J = 1/2 (y - o)^2, whose gradient is dJ/do = o - y.
Page 3: softmax cross-entropy J = -log p_y with p = softmax(s), whose gradient is
dJ/ds_k = p_k - 1{k = y} (the notes swap the two cases; see ``docs/errata.md``).
Page 5: over a batch of n examples J is the mean, so every gradient row is divided by n.

Multilabel classification (issue 17) adds independent sigmoid outputs with binary
cross-entropy, J = 1/n sum_i sum_k [log(1 + e^{s_ik}) - y_ik s_ik], whose gradient is
dJ/dS = (sigmoid(S) - Y) / n (derived in ``docs/estimators.md`` as page 3 derives dJ/ds).

Count regression (issue 25, scikit-learn's ``MLPRegressor(loss="poisson")``) adds the half
Poisson deviance with a log link: the network's output s is log mu, the predicted mean is
mu = e^s, and J = 1/n sum_i [e^{s_i} - y_i s_i] up to a constant, so dJ/ds = (e^s - y) / n.

`PREDICTIONS` maps each loss to its inverse link, what a network trained with it predicts
from its scores: softmax, sigmoid, the scores themselves, or e^s.

Every loss works in the notes' "in practice" row layout: one example per row.
They return the loss as a Python float and write the gradient into ``out`` when given,
so the training hot path allocates nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from backprop import kernels

__all__ = [
    "FUSED_LOSSES",
    "LOSSES",
    "PREDICTIONS",
    "exp",
    "half_poisson_deviance",
    "identity",
    "sigmoid",
    "sigmoid_binary_cross_entropy",
    "softmax",
    "softmax_cross_entropy",
    "squared_error",
]


def softmax(scores: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax, computed stably.

    Subtracting each row's maximum leaves p unchanged (the factor e^{-max} cancels
    between numerator and denominator) and keeps every exponent <= 0, so nothing
    overflows, even for scores of +-1000 in float32.

    Parameters
    ----------
    scores : ndarray of shape (n, c)
        Class scores s, one example per row.
    out : ndarray of shape (n, c), optional
        Where to write p; may be ``scores`` itself.

    Returns
    -------
    p : ndarray of shape (n, c)
        Probabilities, each row summing to 1.
    """
    if out is None:
        out = np.empty_like(scores)
    np.subtract(scores, scores.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def _weights_and_total(
    n: int, sample_weight: np.ndarray | None, dtype: np.dtype
) -> tuple[np.ndarray | None, float]:
    """Per-example weights as a column and their sum (n when unweighted)."""
    if sample_weight is None:
        return None, float(n)
    w = np.asarray(sample_weight, dtype=dtype).reshape(n, 1)
    return w, float(w.sum())


def softmax_cross_entropy(
    scores: np.ndarray,
    y: np.ndarray,
    out: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    label_smoothing: float = 0.0,
) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the scores.

    J = -1/n sum_i log p_{y_i}  (notes page 5), and
    dJ/dS_ik = (p_ik - 1{k = y_i}) / n  (page 5, with the per-example cases of page 3
    in the right order).

    With label smoothing e the target is the distribution q_i = (1 - e) onehot(y_i) + e/c
    instead of onehot(y_i): J = -1/n sum_i sum_k q_ik log p_ik, and since sum_k q_ik = 1
    the notes' derivation goes through unchanged with q in place of the one-hot vector:
    dJ/dS_ik = (p_ik - q_ik) / n (``docs/training.md``). PyTorch's
    ``cross_entropy(label_smoothing=e)``.

    Parameters
    ----------
    scores : ndarray of shape (n, c)
        Class scores S.
    y : ndarray of int, shape (n,)
        True class of each example, in ``0 .. c-1``.
    out : ndarray of shape (n, c), optional
        Where to write dJ/dS; may be ``scores`` itself (the scores are then overwritten).
    sample_weight : ndarray of shape (n,), optional
        Weights w_i; the loss becomes sum_i w_i l_i / sum_i w_i.
    label_smoothing : float, default 0.0
        e in [0, 1): the share of each target spread evenly over the c classes.

    Returns
    -------
    J : float
        The loss.
    dJ_dS : ndarray of shape (n, c)
        Its gradient with respect to ``scores``.
    """
    n, c = scores.shape
    rows = np.arange(n)
    dJ_dS = np.empty_like(scores) if out is None else out
    # log p_y = s_y - log sum_j e^{s_j}, evaluated on shifted scores so nothing overflows;
    # the shifted scores are exponentiated in place and become p, so the whole loss is
    # a handful of passes over an (n, c) array (it runs once per training step).
    np.subtract(scores, scores.max(axis=1, keepdims=True), out=dJ_dS)
    picked = dJ_dS[rows, y]  # s_y - max, a copy taken before the exponential
    e = label_smoothing
    if e:
        # -sum_k q_k log p_k = log sum_j e^{s_j} - (1 - e)(s_y - max) - e/c sum_k (s_k - max)
        spread = dJ_dS.sum(axis=1)
        spread *= e / c
        picked *= 1.0 - e
        picked += spread
    np.exp(dJ_dS, out=dJ_dS)
    norm = dJ_dS.sum(axis=1, keepdims=True)
    losses = np.log(norm[:, 0])
    losses -= picked
    w, total = _weights_and_total(n, sample_weight, scores.dtype)
    J = float(losses @ w[:, 0] / total) if w is not None else float(losses.mean())
    dJ_dS /= norm  # p = softmax(s)
    if e:
        dJ_dS[rows, y] -= 1.0 - e  # p_k - q_k, q = (1 - e) onehot(y) + e/c
        dJ_dS -= e / c
    else:
        dJ_dS[rows, y] -= 1.0  # p_k - 1{k = y}
    if w is not None:
        dJ_dS *= w
    dJ_dS /= total  # J is a mean over the batch: each row's share is 1/n
    return J, dJ_dS


def sigmoid(scores: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Element-wise logistic sigmoid 1 / (1 + e^{-s}), computed stably.

    With e = e^{-|s|} in (0, 1], sigmoid(s) = 1 / (1 + e) for s >= 0 and e / (1 + e) for
    s < 0: no exponent is positive, so nothing overflows, and tiny probabilities of very
    negative scores keep their digits (1 - 1/(1 + e^{|s|}) would round them to 0).

    Parameters
    ----------
    scores : ndarray of shape (n, c)
    out : ndarray of shape (n, c), optional
        Where to write the probabilities; may be ``scores`` itself.

    Returns
    -------
    p : ndarray of shape (n, c)
        Each entry in [0, 1], independently of the others.
    """
    negative = scores < 0
    e = np.abs(scores)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e^{-|s|}
    if out is None:
        out = np.empty_like(scores)
    np.add(e, 1.0, out=out)
    np.divide(np.where(negative, e, 1.0), out, out=out)
    return out


def sigmoid_binary_cross_entropy(
    scores: np.ndarray,
    y: np.ndarray,
    out: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Mean over examples of the summed binary cross-entropies of independent sigmoids.

    With p_ik = sigmoid(s_ik) and y_ik in {0, 1} (one column per label, multilabel
    classification), J = -1/n sum_i sum_k [y_ik log p_ik + (1 - y_ik) log(1 - p_ik)]
    (scikit-learn's multilabel loss; PyTorch's ``BCEWithLogitsLoss(reduction="sum") / n``),
    and dJ/dS_ik = (p_ik - y_ik) / n (``docs/estimators.md``: the page-3 derivation with
    one independent two-class softmax per label).

    Each term is evaluated as log(1 + e^{s}) - y s = max(s, 0) - y s + log1p(e^{-|s|}),
    which never exponentiates a positive number and never takes log of a rounded 0.

    Parameters
    ----------
    scores : ndarray of shape (n, c)
        Label scores S (logits).
    y : ndarray of shape (n, c)
        The 0/1 indicator matrix Y, in the scores' dtype.
    out : ndarray of shape (n, c), optional
        Where to write dJ/dS; may be ``scores`` itself (the scores are then overwritten).
    sample_weight : ndarray of shape (n,), optional
        Weights w_i; the loss becomes sum_i w_i l_i / sum_i w_i.

    Returns
    -------
    J : float
        The loss.
    dJ_dS : ndarray of shape (n, c)
        Its gradient with respect to ``scores``.
    """
    n = scores.shape[0]
    terms = np.maximum(scores, 0.0)
    terms -= y * scores
    e = np.abs(scores)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e^{-|s|}, reused for the sigmoid below
    terms += np.log1p(e)
    per_example = terms.sum(axis=1)
    w, total = _weights_and_total(n, sample_weight, scores.dtype)
    J = float(per_example @ w[:, 0] if w is not None else per_example.sum()) / total
    # The scores are no longer needed: p = sigmoid(s) from e, as `sigmoid` does.
    numerator = np.where(scores < 0, e, 1.0)
    dJ_dS = np.empty_like(scores) if out is None else out
    np.add(e, 1.0, out=dJ_dS)
    np.divide(numerator, dJ_dS, out=dJ_dS)  # p
    dJ_dS -= y  # p - y
    if w is not None:
        dJ_dS *= w
    dJ_dS /= total
    return J, dJ_dS


def squared_error(
    outputs: np.ndarray,
    y: np.ndarray,
    out: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Half mean squared error and its gradient with respect to the outputs.

    J = 1/(2n) sum_i ||y_i - o_i||^2, so for one example and one output it is exactly the
    notes' J = 1/2 (y - o)^2 (page 1), and dJ/dO = (O - Y) / n (page 1: dJ/do = o - y).
    With k outputs the squared errors are summed over outputs and averaged over examples,
    and the gradient is scaled the same way (unlike scikit-learn's multi-output loss).

    Parameters
    ----------
    outputs : ndarray of shape (n, k)
        Network outputs O.
    y : ndarray of shape (n, k)
        Targets Y.
    out : ndarray of shape (n, k), optional
        Where to write dJ/dO; may be ``outputs`` itself.
    sample_weight : ndarray of shape (n,), optional
        Weights w_i; the loss becomes sum_i w_i l_i / sum_i w_i.

    Returns
    -------
    J : float
        The loss.
    dJ_dO : ndarray of shape (n, k)
        Its gradient with respect to ``outputs``.
    """
    n = outputs.shape[0]
    dJ_dO = np.subtract(outputs, y, out=out)  # o - y
    w, total = _weights_and_total(n, sample_weight, outputs.dtype)
    per_example = np.einsum("ik,ik->i", dJ_dO, dJ_dO)
    J = 0.5 * float(per_example @ w[:, 0] if w is not None else per_example.sum()) / total
    if w is not None:
        dJ_dO *= w
    dJ_dO /= total
    return J, dJ_dO


def half_poisson_deviance(
    scores: np.ndarray,
    y: np.ndarray,
    out: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Mean half Poisson deviance with a log link, and its gradient w.r.t. the scores.

    The score is the log of the predicted mean, mu = e^s (scikit-learn's "exp" output
    activation). Per example and output the half deviance is
    d(y, mu) = y log(y / mu) - y + mu = e^s - y s + (y log y - y), whose last bracket does
    not depend on s (y log y = 0 at y = 0), so
    J = 1/n sum_i sum_k d(y_ik, e^{s_ik})  (scikit-learn's ``poisson_loss``, summed over
    outputs, averaged over examples) and dJ/dS_ik = (e^{s_ik} - y_ik) / n: the same
    "prediction minus target" as pages 1 and 3, because the log link is the Poisson
    family's canonical link. PyTorch's ``PoissonNLLLoss(log_input=True)`` is the same
    loss without the constant.

    Each term is evaluated as (mu - y) - y (s - log y), never as log(y / mu): e^{-s} is
    never formed (no overflow for very negative scores) and the difference mu - y, the
    gradient's numerator, is computed once.

    Parameters
    ----------
    scores : ndarray of shape (n, k)
        Log-means S.
    y : ndarray of shape (n, k)
        Non-negative targets (counts or rates), in the scores' dtype.
    out : ndarray of shape (n, k), optional
        Where to write dJ/dS; may be ``scores`` itself (the scores are then overwritten).
    sample_weight : ndarray of shape (n,), optional
        Weights w_i; the loss becomes sum_i w_i l_i / sum_i w_i.

    Returns
    -------
    J : float
        The loss (0 exactly when e^S = Y).
    dJ_dS : ndarray of shape (n, k)
        Its gradient with respect to ``scores``.
    """
    n = scores.shape[0]
    positive = y > 0
    # y (s - log y), 0 where y = 0 (the limit of y log y), taken before `out` overwrites s.
    log_y = np.log(y, out=np.zeros_like(scores), where=positive)
    terms = np.subtract(scores, log_y, out=log_y)
    terms *= y
    dJ_dS = np.exp(scores, out=out)  # mu = e^s
    dJ_dS -= y  # mu - y
    np.subtract(dJ_dS, terms, out=terms)  # d(y, mu) = (mu - y) - y (s - log y)
    per_example = terms.sum(axis=1)
    w, total = _weights_and_total(n, sample_weight, scores.dtype)
    J = float(per_example @ w[:, 0] if w is not None else per_example.sum()) / total
    if w is not None:
        dJ_dS *= w
    dJ_dS /= total
    return J, dJ_dS


def identity(scores: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The scores themselves (the squared error's prediction), copied into ``out``.

    Parameters
    ----------
    scores : ndarray of shape (n, k)
    out : ndarray of shape (n, k), optional
        Where to write them; may be ``scores`` itself.

    Returns
    -------
    o : ndarray of shape (n, k)
    """
    if out is None:
        return scores.copy()
    if out is not scores:
        np.copyto(out, scores)
    return out


def exp(scores: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The Poisson mean e^s of log-means s (the inverse of the log link).

    Parameters
    ----------
    scores : ndarray of shape (n, k)
    out : ndarray of shape (n, k), optional
        Where to write mu; may be ``scores`` itself.

    Returns
    -------
    mu : ndarray of shape (n, k)
    """
    return np.exp(scores, out=out)


#: ``loss(outputs, y, out=None, sample_weight=None, **options) -> (J, dJ/doutputs)``; the
#: options (``label_smoothing``) are those of each loss alone, hence ``...``.
def softmax_cross_entropy_fused(
    scores: np.ndarray,
    y: np.ndarray,
    out: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """`softmax_cross_entropy` (without label smoothing) in one compiled pass per row.

    The same loss and dJ/dS = (P - Y) w / sum(w) (page 5), from `backprop.kernels`; equal
    to `softmax_cross_entropy` up to the last bit of ``exp`` and ``log``. Contiguous
    ``scores`` only; the result is written over ``out`` (a copy of ``scores`` if None).
    """
    n = scores.shape[0]
    dJ_dS = scores.copy() if out is None else out
    if out is not None and out is not scores:
        np.copyto(out, scores)
    w, total = _weights_and_total(n, sample_weight, scores.dtype)
    weights = _NO_WEIGHTS[scores.dtype.char] if w is None else w[:, 0]
    J = kernels.get().softmax_xent(dJ_dS, y, weights, scores.dtype.type(total))
    return float(J), dJ_dS


#: The kernel's "no sample weights" (an empty array of the scores' dtype).
_NO_WEIGHTS = {np.dtype(t).char: np.empty(0, t) for t in (np.float32, np.float64)}


LOSSES: dict[str, Callable[..., tuple[float, np.ndarray]]] = {
    "squared_error": squared_error,
    "softmax_cross_entropy": softmax_cross_entropy,
    "sigmoid_binary_cross_entropy": sigmoid_binary_cross_entropy,
    "poisson": half_poisson_deviance,
}

#: Each loss's inverse link, ``f(scores, out=None) -> predictions``: what a network trained
#: with it predicts (class or label probabilities, values, Poisson means), the mean of y
#: under the loss's model.
PREDICTIONS: dict[str, Callable[..., np.ndarray]] = {
    "squared_error": identity,
    "softmax_cross_entropy": softmax,
    "sigmoid_binary_cross_entropy": sigmoid,
    "poisson": exp,
}

# Fused versions (`backprop.kernels`) of some losses, used by a network that runs fused:
# the same value and gradient as the `LOSSES` entry of the same name, in one pass.
FUSED_LOSSES: dict[str, Callable[..., tuple[float, np.ndarray]]] = {
    "softmax_cross_entropy": softmax_cross_entropy_fused,
}
