"""Exercises: the student writes Alg 3's backward pass, and `check` says where it is wrong.

The notes' backward pass in its three forms (Alg 3 for one example, page 4; a batch in
columns, pages 5-6; "in practice" in rows, pages 6-7). The student writes a function with
the arguments of the matching `backprop.notes` form, ``(x or X, y, W1, b1, W2, b2)``,
returning ``{"W1": ..., "b1": ..., "W2": ..., "b2": ...}``; ``check(form, fn)`` runs it on a
problem with distinct sizes (d = 7, m = 5, c = 3, n = 11, so a transposed product cannot
hide behind a square shape) and reports, per parameter, the relative error against centred
finite differences of the notes' loss and against the engine (`backprop.MLP`), with a hint
naming the likely mistake when it fails (a transposed product, a bias gradient not summed
over the batch, a wrong softmax sign, a missing 1/n, a wrong delta(1)).

The reference answers live here (``ANSWERS``; the written exercises' in ``QUESTIONS``),
not in the notebook, so that no notebook front end shows them; ``answer(name)`` returns
one's source for a student who asks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop import notes
from backprop.gradcheck import (
    DEFAULT_THRESHOLD,
    NotesProblem,
    check_gradients,
    notes_problem,
    numerical_gradient,
    relative_error,
)
from backprop.network import MLP

__all__ = [
    "ANSWERS",
    "EXERCISES",
    "QUESTIONS",
    "Exercise",
    "ParamResult",
    "Report",
    "answer",
    "check",
]

KEYS = ("W1", "b1", "W2", "b2")
Grads = Mapping[str, Any]
Backward = Callable[..., Grads | None]


@dataclass(frozen=True)
class Exercise:
    """One form of the backward pass: the notes' function that it must agree with, the
    pages, each gradient's formula with its shapes, and the batch axis of a delta."""

    notes_form: str
    pages: str
    formulas: dict[str, str]
    batch_axis: int | None  # the axis of n in delta (None: one example)
    rows: bool  # the engine's row layout as is (True) or transposed (the column forms)


EXERCISES: dict[str, Exercise] = {
    "example": Exercise(
        "classification_example",
        "page 4",
        {
            "W1": "dJ/dW(1) = delta(1) x^T: (m x 1)(1 x d) = m x d",
            "b1": "dJ/db(1) = delta(1): m x 1",
            "W2": "dJ/dW(2) = delta(2) a^T: (c x 1)(1 x m) = c x m",
            "b2": "dJ/db(2) = delta(2): c x 1",
        },
        batch_axis=None,
        rows=False,
    ),
    "columns": Exercise(
        "classification_batch",
        "pages 5-6",
        {
            "W1": "dJ/dW(1) = delta(1) X^T: (m x n)(n x d) = m x d",
            "b1": "dJ/db(1) = delta(1) 1_n: (m x n)(n x 1) = m x 1",
            "W2": "dJ/dW(2) = delta(2) A^T: (c x n)(n x m) = c x m",
            "b2": "dJ/db(2) = delta(2) 1_n: (c x n)(n x 1) = c x 1",
        },
        batch_axis=1,
        rows=False,
    ),
    "rows": Exercise(
        "classification_batch_rows",
        "pages 6-7",
        {
            "W1": "dJ/dW[1] = X^T delta[1]: (d x n)(n x m) = d x m",
            "b1": "dJ/db[1] = 1_n^T delta[1]: (1 x n)(n x m) = 1 x m",
            "W2": "dJ/dW[2] = A^T delta[2]: (m x n)(n x c) = m x c",
            "b2": "dJ/db[2] = 1_n^T delta[2]: (1 x n)(n x c) = 1 x c",
        },
        batch_axis=0,
        rows=True,
    ),
}


# --------------------------------------------------------------- the reference answers
def _answer_example(
    x: np.ndarray, y: int, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> dict[str, np.ndarray]:
    z = W1 @ x + b1  # m x 1
    a = notes.relu(z)
    s = W2 @ a + b2  # c x 1
    p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    delta2 = p - np.eye(len(p))[:, [y]]  # dJ/ds = p - e_y (page 3, fixed)    c x 1
    delta1 = (W2.T @ delta2) * notes.relu_prime(z)  # (W(2)^T delta(2)) ⊙ ReLU'(z)   m x 1
    return {"W1": delta1 @ x.T, "b1": delta1, "W2": delta2 @ a.T, "b2": delta2}


def _answer_columns(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> dict[str, np.ndarray]:
    n = X.shape[1]
    Z = W1 @ X + b1  # m x n (b1 broadcast: b(1) 1_n^T)
    A = notes.relu(Z)
    S = W2 @ A + b2  # c x n
    P = np.exp(S - S.max(axis=0)) / np.exp(S - S.max(axis=0)).sum(axis=0)
    delta2 = (P - np.eye(len(P))[:, y]) / n  # (P - Y) / n                    c x n
    delta1 = (W2.T @ delta2) * notes.relu_prime(Z)  # m x n
    ones_n = np.ones((n, 1))
    return {"W1": delta1 @ X.T, "b1": delta1 @ ones_n, "W2": delta2 @ A.T, "b2": delta2 @ ones_n}


def _answer_rows(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> dict[str, np.ndarray]:
    n = X.shape[0]
    Z = X @ W1 + b1  # n x m (b1 broadcast: 1_n b[1])
    A = notes.relu(Z)
    S = A @ W2 + b2  # n x c
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    delta2 = (P - np.eye(P.shape[1])[y]) / n  # (P - Y) / n                   n x c
    delta1 = (delta2 @ W2.T) * notes.relu_prime(Z)  # n x m
    ones_n_T = np.ones((1, n))
    return {
        "W1": X.T @ delta1,
        "b1": ones_n_T @ delta1,
        "W2": A.T @ delta2,
        "b2": ones_n_T @ delta2,
    }


ANSWERS: dict[str, Backward] = {
    "example": _answer_example,
    "columns": _answer_columns,
    "rows": _answer_rows,
}


# ------------------------------------------------- the written exercises' answers
def _answer_softmax_sum() -> dict[str, Any]:
    """Exercise 2 (page 3, erratum #1): why the as-written dJ/ds sums to 2 - c.

    Fixed: sum_k (p_k - 1{k = y}) = 1 - 1 = 0. As written: p_y + sum_{k != y} (p_k - 1)
    = sum_k p_k - (c - 1) = 1 - (c - 1) = 2 - c. For c = 2 both sum to 0, yet the
    as-written (p_y, p_other - 1) = p_y (1, -1) is -(p_y / p_other) times the right
    p_other (-1, 1): it points uphill, and descent along it climbs.
    """
    sums = {}
    for c in (2, 3, 10):
        p = np.full((c, 1), 1 / c)
        sums[c] = (float(notes.dJ_ds(p, 0).sum()), float(notes.dJ_ds_as_written(p, 0).sum()))
    p_two = np.array([[0.2], [0.8]])  # c = 2, y = 0: -p_y / p_other = -0.25
    ratio = (notes.dJ_ds_as_written(p_two, 0) / notes.dJ_ds(p_two, 0)).ravel()
    return {"sums (fixed, as written) by c": sums, "c = 2: as written / fixed": ratio}


def _answer_ones_m() -> dict[str, Any]:
    """Exercise 3 (page 5, erratum #4): Z = W(1) X + b(1) 1_m^T with m = n.

    With m != n, b(1) 1_m^T is m x m and W(1) X is m x n: NumPy refuses the sum. With
    m = n, 1_m and 1_n are the same vector, so the line runs and gives the right Z: a test
    whose hidden width equals its batch size never sees the typo. Distinct sizes do.
    """
    same = notes_problem(classification=True, d=7, m=11, c=3, n=11, seed=0)
    X, _, W1, b1, _, _ = same.args("classification_batch")
    as_written = W1 @ X + b1 @ np.ones((1, W1.shape[0]))  # b(1) 1_m^T, m = n = 11
    right = W1 @ X + b1 @ np.ones((1, X.shape[1]))  # b(1) 1_n^T
    return {"Z as written": as_written.shape, "equals the right Z": _close(as_written, right)}


def _answer_rows_from_columns() -> dict[str, bool]:
    """Exercise 4 (pages 5-7): the row form from the column form.

    Rows: X[rows] = X^T, W[l] = W(l)^T, b[l] = b(l)^T; transposing both sides of every
    column-form gradient gives the row form's, so each gradient is the transpose:
    dJ/dW[1] = (delta(1) X^T)^T = X delta(1)^T, which is X[rows]^T delta[1].
    """
    problem = notes_problem(classification=True, seed=0)
    _, cols = notes.classification_batch(*problem.args("classification_batch"))
    _, rows = notes.classification_batch_rows(*problem.args("classification_batch_rows"))
    return {k: _close(cols[k].T, rows[k]) for k in KEYS}


def _answer_tanh() -> dict[str, float]:
    """Exercise 5 (pages 2-4): tanh in place of ReLU, every gradient checked.

    Only f' changes in the backward pass: delta(1) = (W(2)^T delta(2)) ⊙ (1 - tanh^2(z)).
    Every relative error against centred finite differences is below 1e-7.
    """
    problem = notes_problem(classification=True, seed=0)
    net = MLP([7, 5, 3], activation="tanh", dtype=np.float64, seed=2)
    _, grads = net.loss_and_grads(problem.X, problem.y)
    return check_gradients(lambda: net.compute_loss(problem.X, problem.y), net.params, grads)


#: The written exercises of the notebook's section 12, by name: each answer's docstring
#: is the reasoning and its body computes what the reasoning claims.
QUESTIONS: dict[str, Callable[[], Any]] = {
    "softmax-sum": _answer_softmax_sum,
    "ones-m": _answer_ones_m,
    "rows-from-columns": _answer_rows_from_columns,
    "tanh": _answer_tanh,
}


def answer(name: str) -> str:
    """The source of the reference answer to exercise ``name``: a backward-pass form
    (`EXERCISES`) or a written exercise (`QUESTIONS`); print it."""
    if name in QUESTIONS:
        return inspect.getsource(QUESTIONS[name])
    if name in ANSWERS:
        return inspect.getsource(ANSWERS[name])
    raise ValueError(f"unknown exercise {name!r}: choose one of {sorted([*ANSWERS, *QUESTIONS])}")


# --------------------------------------------------------------------------- checking
@dataclass(frozen=True)
class ParamResult:
    """One parameter's verdict: errors against finite differences and the engine (NaN
    when the shape is wrong) and, when it fails, the hint."""

    name: str
    passed: bool
    fd_error: float
    engine_error: float
    hint: str = ""


@dataclass(frozen=True)
class Report:
    """What `check` found, parameter by parameter; prints as a table."""

    form: str
    results: tuple[ParamResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def hint(self, name: str) -> str:
        """The hint for parameter ``name`` ("" when it passed)."""
        return next(r.hint for r in self.results if r.name == name)

    def __str__(self) -> str:
        lines = [f"{self.form} ({EXERCISES[self.form].pages}):"]
        for r in self.results:
            errs = (
                f"finite differences {r.fd_error:.1e}, engine {r.engine_error:.1e}"
                if np.isfinite(r.fd_error)
                else "(no comparison: wrong shape or missing)"
            )
            verdict = "pass" if r.passed else "FAIL"
            lines.append(f"  {r.name}  {verdict}  {errs}" + (f"\n      {r.hint}" if r.hint else ""))
        lines.append("all four right" if self.passed else "not yet: see the hints")
        return "\n".join(lines)

    __repr__ = __str__


def _exercise(form: str) -> tuple[str, Exercise]:
    if form not in EXERCISES:
        raise ValueError(f"unknown exercise {form!r}: choose one of {sorted(EXERCISES)}")
    return form, EXERCISES[form]


def _engine_grads(problem: NotesProblem, exercise: Exercise, example: int) -> dict[str, np.ndarray]:
    """`backprop.MLP`'s gradients on the same problem, in the exercise's layout."""
    d, m = problem.params["W1"].shape
    net = MLP([d, m, problem.params["W2"].shape[1]], dtype=np.float64)
    net.params = {k: v.copy() for k, v in problem.params.items()}
    if exercise.batch_axis is None:  # one example: Alg 3 on row `example` alone
        X, y = problem.X[example : example + 1], problem.y[example : example + 1]
    else:
        X, y = problem.X, problem.y
    _, grads = net.loss_and_grads(X, y)
    if exercise.rows:
        return {k: g.reshape(1, -1) if k.startswith("b") else g for k, g in grads.items()}
    return {k: g.reshape(-1, 1) if k.startswith("b") else g.T for k, g in grads.items()}


def _as_written_grads(
    problem: NotesProblem, exercise: Exercise, example: int
) -> dict[str, np.ndarray]:
    """The gradients with page 3's swapped softmax cases (erratum #1): Alg 3 per example
    with `notes.dJ_ds_as_written`, averaged over the batch (a batch's J is the mean)."""
    which = [example] if exercise.batch_axis is None else range(len(problem.y))
    per_example = []
    for i in which:
        x, y, W1, b1, W2, b2 = problem.args("classification_example", i)
        as_written = notes.dJ_ds_as_written
        per_example.append(notes.classification_example(x, y, W1, b1, W2, b2, as_written)[1])
    mean = {k: np.mean([g[k] for g in per_example], axis=0) for k in KEYS}
    return {k: v.T for k, v in mean.items()} if exercise.rows else mean


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and relative_error(a, b) < DEFAULT_THRESHOLD


def _hint(
    name: str, got: np.ndarray, right: np.ndarray, exercise: Exercise, wrong: dict[str, Any]
) -> str:
    """The likely mistake behind a wrong ``got`` (the first diagnosis that fits)."""
    formula = exercise.formulas[name]
    axis = exercise.batch_axis
    if got.shape != right.shape:
        if got.shape == right.T.shape and _close(got.T, right):
            return f"transposed product: the order follows from the shapes, {formula}"
        if axis is not None and got.ndim == 2 and got.shape[axis] == wrong["n"]:
            summed = got.sum(axis=axis, keepdims=True)
            if summed.shape == right.shape:
                return (
                    "missing sum over the batch: the bias is broadcast to every example in "
                    f"the forward pass, so its gradient sums delta over them, {formula}"
                )
        return f"shape {got.shape}, but {name} is {right.shape}: {formula}"
    if _close(-got, right) or _close(got, wrong["as_written"][name]):
        return (
            "wrong softmax sign: delta(2) = dJ/ds = p - e_y (page 3's cases are swapped, "
            "errata #1): the true class's score must be pushed up"
        )
    if axis is not None and _close(got / wrong["n"], right):
        return "missing 1/n: J is the mean over the n examples, so delta(2) = (P - Y) / n"
    if name in ("W1", "b1") and wrong["second_layer_right"]:
        return (
            "delta(2) is right (dJ/dW2, dJ/db2 pass), delta(1) is not: "
            f"delta(1) = (W(2)^T delta(2)) ⊙ ReLU'(Z), then {formula}"
        )
    return f"wrong values: {formula}"


def _as_arrays(returned: Any) -> dict[str, Any]:
    """The student's gradients as float64 arrays; in place of one that is missing or not
    numeric, None or the one-line reason."""
    if returned is None:
        return {}
    if not isinstance(returned, Mapping):
        reason = f"return a dict with keys {', '.join(KEYS)}, not {type(returned).__name__}"
        return dict.fromkeys(KEYS, reason)
    got: dict[str, Any] = {}
    for k in KEYS:
        value = returned.get(k)
        try:
            got[k] = None if value is None else np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            got[k] = f"{k} is not an array of numbers ({type(value).__name__})"
    return got


def check(form: str, backward: Backward, seed: int = 0, example: int = 0) -> Report:
    """Check a student's backward pass, parameter by parameter.

    Parameters
    ----------
    form : {"example", "columns", "rows"}
        Alg 3 for one example (page 4), a batch in columns (pages 5-6), in rows (pages 6-7).
    backward : callable
        ``backward(x or X, y, W1, b1, W2, b2) -> {"W1": ..., "b1": ..., "W2": ..., "b2": ...}``
        with the arguments and gradient shapes of the matching `backprop.notes` form
        (x : (d, 1), X : (d, n) or (n, d)); a gradient left ``None`` is "not written yet".
    seed : int, default 0
        The random problem (d = 7, m = 5, c = 3, n = 11, every |z| away from the kink).
    example : int, default 0
        Which example the one-example form uses.

    Returns
    -------
    Report
        ``.passed``, ``.results`` (one `ParamResult` per parameter); prints as a table.
    """
    form, exercise = _exercise(form)
    problem = notes_problem(classification=True, seed=seed)
    args = problem.args(exercise.notes_form, example)
    loss_fn = getattr(notes, exercise.notes_form)
    returned = backward(*(a.copy() if isinstance(a, np.ndarray) else a for a in args))
    got = _as_arrays(returned)
    engine = _engine_grads(problem, exercise, example)
    params = dict(zip(KEYS, args[2:], strict=True))  # perturbed in place, then restored
    numeric = {k: numerical_gradient(lambda: loss_fn(*args)[0], params[k]) for k in KEYS}
    wrong: dict[str, Any] = {
        "n": len(problem.y),
        "as_written": _as_written_grads(problem, exercise, example),
        "second_layer_right": all(
            isinstance(got.get(k), np.ndarray) and _close(got[k], engine[k]) for k in ("W2", "b2")
        ),
    }
    results = []
    for k in KEYS:
        g = got.get(k)
        if not isinstance(g, np.ndarray):  # None (the stub) or the reason it is no array
            results.append(ParamResult(k, False, np.nan, np.nan, g or "not written yet"))
            continue
        ok_shape = g.shape == engine[k].shape
        fd = relative_error(g, numeric[k]) if ok_shape else np.nan
        eng = relative_error(g, engine[k]) if ok_shape else np.nan
        passed = ok_shape and fd < DEFAULT_THRESHOLD and eng < DEFAULT_THRESHOLD
        hint = "" if passed else _hint(k, g, engine[k], exercise, wrong)
        results.append(ParamResult(k, passed, fd, eng, hint))
    return Report(form, tuple(results))
