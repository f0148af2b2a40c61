"""Gradient checking: centred finite differences against the analytic gradients.

For every scalar parameter theta, dJ/dtheta ~ (J(theta + h) - J(theta - h)) / (2h), with an
error of order h^2. The comparison uses one relative error per parameter array,

    rel(a, b) = max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|)),

which, unlike an elementwise ratio, is not fooled by entries that are exactly zero on one
side and round-off on the other (dead ReLU units). Checks run in float64, and the random
problems are drawn so that no ReLU pre-activation lies within a margin of its kink at 0,
where J is not differentiable and the finite difference means nothing.

`backprop gradcheck` prints the table for the notes' six forms (page 1-7), the notes'
as-written dJ/ds (page 3, expected to fail) and the engine `MLP` at several depths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from backprop import notes
from backprop.layers import ACTIVATIONS, get_activation
from backprop.network import MLP

__all__ = [
    "CheckResult",
    "check_gradients",
    "format_table",
    "gradcheck_table",
    "notes_problem",
    "numerical_gradient",
    "relative_error",
]

DEFAULT_THRESHOLD = 1e-7


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|)).

    Parameters
    ----------
    a, b : ndarray of the same shape

    Returns
    -------
    float
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Centred finite differences of ``f`` with respect to every entry of ``x``.

    Parameters
    ----------
    f : callable
        Returns the loss; it must read ``x`` (perturbed in place, then restored).
    x : ndarray
        The parameter to perturb, float64.
    h : float, default 1e-6
        Step.

    Returns
    -------
    ndarray of the shape of x
        (f(x + h e_i) - f(x - h e_i)) / (2h) for every i.
    """
    grad = np.empty(x.shape, dtype=np.float64)
    # Index x itself (not x.reshape(-1), which is a copy when x is a transposed view).
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def check_gradients(
    loss: Callable[[], float],
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    h: float = 1e-6,
) -> dict[str, float]:
    """Relative error between analytic ``grads`` and finite differences, per parameter.

    Parameters
    ----------
    loss : callable
        Returns J for the current values of ``params`` (perturbed in place).
    params : dict of str to ndarray
    grads : dict of str to ndarray
        Analytic gradients, same keys and shapes.
    h : float, default 1e-6

    Returns
    -------
    dict of str to float
        `relative_error` for each key.
    """
    return {k: relative_error(grads[k], numerical_gradient(loss, params[k], h)) for k in params}


# ------------------------------------------------------------------ random problems
NOTES_FORMS: dict[str, Callable[..., tuple[float, dict[str, np.ndarray]]]] = {
    "regression_example": notes.regression_example,
    "classification_example": notes.classification_example,
    "regression_batch": notes.regression_batch,
    "classification_batch": notes.classification_batch,
    "regression_batch_rows": notes.regression_batch_rows,
    "classification_batch_rows": notes.classification_batch_rows,
}


@dataclass
class NotesProblem:
    """Row-layout data and parameters of the notes' two-layer net, float64.

    X : (n, d); y : (n,) int labels or float targets; W1 : (d, m); b1 : (m,); W2 : (m, c);
    b2 : (c,). ``args(form)`` lays them out as a given form of the notes expects.
    """

    X: np.ndarray
    y: np.ndarray
    params: dict[str, np.ndarray]

    def args(self, form: str, example: int = 0) -> tuple[Any, ...]:
        """Arguments (x or X, y, W1, b1, W2, b2) for ``notes.<form>``, sharing memory with
        ``params`` where the layout allows so that in-place perturbations reach them."""
        P = self.params
        if form.endswith("_rows"):
            return (self.X, self.y, P["W1"], P["b1"][None, :], P["W2"], P["b2"][None, :])
        cols = (P["W1"].T, P["b1"][:, None], P["W2"].T, P["b2"][:, None])
        if form.endswith("_example"):
            y = self.y[example]
            return (self.X[example][:, None], y.item(), *cols)
        return (self.X.T, self.y, *cols)


def _min_abs_hidden_preactivation(net: MLP, X: np.ndarray) -> float:
    """Smallest |z| over every hidden pre-activation of ``net`` on X."""
    smallest = np.inf
    A = X
    for l in range(1, net.n_layers):
        Z = A @ net.params[f"W{l}"] + net.params[f"b{l}"]
        smallest = min(smallest, float(np.abs(Z).min()))
        A = net.act.forward(Z)
    return smallest


def random_network_problem(
    layer_sizes: list[int],
    activation: str,
    loss: str,
    n: int,
    seed: int = 0,
    margin: float = 1e-3,
) -> tuple[MLP, np.ndarray, np.ndarray]:
    """A float64 `MLP` with random data whose ReLU pre-activations avoid the kink.

    Parameters
    ----------
    layer_sizes : list of int
    activation, loss : str
    n : int
        Number of examples.
    seed : int
    margin : float
        Every hidden |z| is at least this (for an activation with a kink at 0, such as
        ReLU), so a step h << margin never crosses the kink.

    Returns
    -------
    net : MLP
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,) int labels or (n, c) float targets
    """
    for attempt in range(1000):
        rng = np.random.default_rng([seed, attempt])
        net = MLP(layer_sizes, activation=activation, loss=loss, dtype=np.float64, seed=seed)
        for key in net.params:  # nonzero biases, so their gradients are exercised too
            if key.startswith("b"):
                net.params[key][:] = rng.normal(0, 0.5, net.params[key].shape)
        X = rng.normal(size=(n, layer_sizes[0]))
        c = layer_sizes[-1]
        y = rng.integers(0, c, n) if net.is_classifier else rng.normal(size=(n, c))
        kink = get_activation(activation).kink_at_zero
        if not kink or _min_abs_hidden_preactivation(net, X) > margin:
            return net, X, y
    raise RuntimeError("could not draw a problem away from the ReLU kinks")  # pragma: no cover


def notes_problem(
    classification: bool, d: int = 7, m: int = 5, c: int = 3, n: int = 11, seed: int = 0
) -> NotesProblem:
    """A problem for the notes' two-layer net with distinct sizes d, m, c, n.

    Parameters
    ----------
    classification : bool
        Softmax cross-entropy with c classes, else regression (one output).
    d, m, c, n : int
        Input width, hidden width, classes, examples. Distinct, so any mix-up of two of
        them (the notes confuse m and n) breaks a shape.
    seed : int

    Returns
    -------
    NotesProblem
    """
    loss = "softmax_cross_entropy" if classification else "squared_error"
    net, X, y = random_network_problem(
        [d, m, c if classification else 1], "relu", loss, n, seed=seed
    )
    return NotesProblem(X, y if classification else y[:, 0], net.params)


# ------------------------------------------------------------------ the table
@dataclass
class CheckResult:
    """One row of the gradcheck table."""

    name: str
    param: str
    error: float
    expect_fail: bool = False

    def ok(self, threshold: float) -> bool:
        """Whether the row is as expected: below threshold, or above it for an erratum."""
        return (self.error > threshold) if self.expect_fail else (self.error <= threshold)


def _loss_only(fn: Callable[..., tuple[float, Any]], args: tuple[Any, ...]) -> float:
    return fn(*args)[0]


def _notes_rows(seed: int) -> Iterator[CheckResult]:
    for form, fn in NOTES_FORMS.items():
        problem = notes_problem(form.startswith("classification"), seed=seed)
        args = problem.args(form)
        _, grads = fn(*args)
        params = dict(zip(("W1", "b1", "W2", "b2"), args[2:], strict=True))
        errors = check_gradients(partial(_loss_only, fn, args), params, grads)
        for key, err in errors.items():
            yield CheckResult(f"notes.{form}", key, err)
    # The notes' page 3 as written: dJ/ds_k = p_k for k = y, p_k - 1 otherwise.
    problem = notes_problem(True, seed=seed)
    args = problem.args("classification_example")
    x, y, W1, b1, W2, b2 = args
    _, grads = notes.classification_example(x, y, W1, b1, W2, b2, score_grad=notes.dJ_ds_as_written)
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    errors = check_gradients(partial(_loss_only, notes.classification_example, args), params, grads)
    for key, err in errors.items():
        yield CheckResult("notes as written (p.3 dJ/ds)", key, err, expect_fail=True)


def _engine_rows(seed: int) -> Iterator[CheckResult]:
    widths = [7, 5, 6, 4, 3]
    for depth in (1, 2, 3, 4):
        # Without a hidden layer there is no activation: one row per loss, not one per
        # activation repeating the same check.
        for activation in ACTIVATIONS if depth > 1 else ["relu"]:
            for loss in ("softmax_cross_entropy", "squared_error"):
                sizes = [*widths[:depth], 3]
                net, X, y = random_network_problem(sizes, activation, loss, n=11, seed=seed)
                _, grads = net.loss_and_grads(X, y)
                errors = check_gradients(partial(net.compute_loss, X, y), net.params, grads)
                name = f"MLP{sizes} {activation if depth > 1 else 'linear'} {loss}"
                yield CheckResult(name, "max", max(errors.values()))


def gradcheck_table(seed: int = 0, engine: bool = True) -> list[CheckResult]:
    """Run every check: the notes' six forms, the notes' typo, and the engine.

    Parameters
    ----------
    seed : int, default 0
    engine : bool, default True
        Include the `MLP` checks (depths 1-4, every activation, both losses).

    Returns
    -------
    list of CheckResult
    """
    rows = list(_notes_rows(seed))
    if engine:
        rows.extend(_engine_rows(seed))
    return rows


def format_table(rows: list[CheckResult], threshold: float = DEFAULT_THRESHOLD) -> str:
    """The table `backprop gradcheck` prints."""
    width = max(len(r.name) for r in rows)
    lines = [f"{'check':<{width}}  {'param':<5}  {'rel. error':>10}  result"]
    for r in rows:
        if r.expect_fail:
            verdict = "fails, as expected (erratum)" if r.ok(threshold) else "UNEXPECTED PASS"
        else:
            verdict = "ok" if r.ok(threshold) else "FAIL"
        lines.append(f"{r.name:<{width}}  {r.param:<5}  {r.error:10.2e}  {verdict}")
    return "\n".join(lines)
