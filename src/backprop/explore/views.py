"""What the explorer shows, computed in Python with the engine's own pieces.

`backward_pass` runs the notes' forward and backward pass layer by layer with
`backprop.layers` and `backprop.losses` (the functions `MLP.loss_and_grads` fuses), and
keeps every intermediate matrix the notes name. The tests check every one of them against
`MLP.loss_and_grads` and `backprop.notes` in float64. Nothing here is computed in the
browser: it only draws these arrays.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop.gradcheck import numerical_gradient
from backprop.layers import affine_backward, affine_forward
from backprop.losses import LOSSES, softmax
from backprop.network import MLP
from backprop.optim import Optimizer

__all__ = [
    "FORMS",
    "GRAPH_MAX_UNITS",
    "Pass",
    "backward_pass",
    "boundary",
    "chain_rule",
    "encode",
    "forward_pass",
    "graph",
    "image_view",
    "matrices",
]

#: The three forms of the notes: rows (pages 6-7), columns (pages 5-6), one example (Alg 3).
FORMS = ("rows", "columns", "example")


def encode(a: np.ndarray, dtype: str = "<f8") -> dict[str, Any]:
    """An array as JSON: its shape and its little-endian bytes in base64 (row-major)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return {"shape": list(a.shape), "dtype": dtype, "b64": base64.b64encode(a.tobytes()).decode()}


@dataclass
class Pass:
    """Every matrix of one forward and backward pass in row layout (page 7).

    ``A[0]`` is X (times its dropout mask, if any) and ``A[l]`` the activation of layer l;
    ``Z[l]`` (l = 1..L) the pre-activations, ``Z[L]`` the scores S; ``delta[l]``,
    ``dA[l]`` (dJ/dA(l), l < L), ``fprime[l]`` and ``dW[l]``, ``db[l]`` per layer (index 0
    unused), and ``dX`` = dJ/dX = delta(1) W(1)^T, the gradient with respect to the inputs.
    ``X`` is the batch as given; ``M[l]`` the inverted-dropout mask M(l) / keep of the
    inputs (l = 0) and of hidden layer l, or None where nothing is dropped.
    """

    J: float
    X: np.ndarray
    A: list[np.ndarray]
    Z: list[np.ndarray]
    out: np.ndarray  # P (softmax of S) for a classifier, O = S for a regressor
    Y: np.ndarray  # one-hot labels, or the targets
    delta: list[np.ndarray]
    dA: list[np.ndarray]
    fprime: list[np.ndarray]
    dW: list[np.ndarray]
    db: list[np.ndarray]
    dX: np.ndarray
    M: list[np.ndarray | None]


Masks = Sequence[np.ndarray | None] | None


def _check_masks(net: MLP, masks: Masks) -> list[np.ndarray | None]:
    drop: list[np.ndarray | None] = [None] * net.n_layers if masks is None else list(masks)
    if len(drop) != net.n_layers:
        raise ValueError(f"masks must have {net.n_layers} entries (inputs, then each hidden layer)")
    return drop


def forward_pass(
    net: MLP, X: np.ndarray, masks: Masks = None
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """The forward pass of page 7 keeping every layer: (A, Z, F) with F[l] = f(Z(l)).

    ``A[l]`` = F[l] * M(l) / keep where layer l has a dropout mask (``masks`` in the form
    `MLP.loss_and_grads` takes), else F[l]; ``A[0]`` = X (* M(0) / keep); ``Z[0]`` and
    ``F[0]`` are X (unused); ``Z[L]`` = S.
    """
    L, act = net.n_layers, net.act
    drop = _check_masks(net, masks)
    A: list[np.ndarray] = [X if drop[0] is None else X * drop[0]]  # A(0) = X ⊙ M(0) / keep
    Z: list[np.ndarray] = [X]  # index 0 unused, so that Z[l] is layer l
    F: list[np.ndarray] = [X]
    for l in range(1, L + 1):
        z, _ = affine_forward(A[-1], net.params[f"W{l}"], net.params[f"b{l}"])  # Z = A W + 1_n b
        Z.append(z)
        if l < L:
            F.append(act.forward(z))  # f(Z(l))
            M = drop[l]
            A.append(F[l] if M is None else F[l] * M)  # A(l) = f(Z(l)) ⊙ M(l) / keep
    return A, Z, F


def backward_pass(net: MLP, X: np.ndarray, y: np.ndarray, masks: Masks = None) -> Pass:
    """The notes' Alg 3 in row layout on a batch, keeping every matrix.

    Parameters
    ----------
    net : MLP
    X : ndarray of shape (n, d)
    y : ndarray
        Labels of shape (n,) or targets of shape (n,) / (n, c).
    masks : sequence of (ndarray or None), optional
        Inverted dropout, as `MLP.loss_and_grads` takes it: ``masks[0]`` (n, d) for the
        inputs, ``masks[l]`` (n, m_l) for hidden layer l, each M / keep.

    Returns
    -------
    Pass
    """
    X = net.check_X(X)
    y = net.check_y(y, X.shape[0])
    L, act = net.n_layers, net.act
    drop = _check_masks(net, masks)
    A, Z, F = forward_pass(net, X, drop)
    S = Z[L]
    if net.is_classifier:
        out = softmax(S)
        Y = np.zeros_like(S)
        Y[np.arange(len(y)), y] = 1.0
    else:
        out, Y = S, y
    J, delta_L = LOSSES[net.loss](S, y)  # delta(L) = dJ/dS = (P - Y) / n (page 6)
    empty = [np.empty(0)] * (L + 1)
    delta, dA, fprime, dW, db = (list(empty) for _ in range(5))
    delta[L] = delta_L
    dX = X
    for l in range(L, 0, -1):
        dA_prev, dW[l], db[l] = affine_backward(delta[l], (A[l - 1], net.params[f"W{l}"]))
        if l > 1:
            k = l - 1
            dA[k] = dA_prev  # dJ/dA(l-1) = delta(l) W(l)^T
            fprime[k] = act.derivative(Z[k], F[k])  # f'(Z(l-1)), of the undropped f(Z)
            delta[k] = dA[k] * fprime[k]  # delta(l-1) = dJ/dA ⊙ f'(Z)
            Mk = drop[k]
            if Mk is not None:  # A = f(Z) ⊙ M / keep, so dA/dZ = f'(Z) ⊙ M / keep
                delta[k] = delta[k] * Mk
        else:
            # dJ/dX = delta(1) W(1)^T: the same step one layer further (through M(0))
            dX = dA_prev if drop[0] is None else dA_prev * drop[0]
    return Pass(float(J), X, A, Z, out, Y, delta, dA, fprime, dW, db, dX, drop)


#: Where each quantity of a form is in the notes (circled page numbers; the "in practice"
#: X is at the foot of page 6, the row-layout equations on page 7). Y is not in the notes:
#: its entries are page 5's 1{y(i) = k}. Dropout is not in the notes at all.
_PAGES: dict[str, dict[str, str]] = {
    "rows": {
        "X": "6", "Z": "7", "A": "7", "P": "3", "Y": "5 (1{y(i) = k})", "delta(L)": "5",
        "dJ/dW": "7", "dJ/db": "7", "dJ/dA": "7", "f'": "7", "delta": "7",
    },
    "columns": {
        "X": "5", "Z": "5", "A": "5", "P": "3, 5", "Y": "5 (1{y(i) = k})", "delta(L)": "5, 6",
        "dJ/dW": "6", "dJ/db": "6", "dJ/dA": "6", "f'": "2, 6", "delta": "6",
    },
    "example": {
        "X": "3", "Z": "3", "A": "3", "P": "3", "Y": "3 (e_y)", "delta(L)": "3, 4",
        "dJ/dW": "4", "dJ/db": "4", "dJ/dA": "4", "f'": "2, 4", "delta": "4",
    },
}  # fmt: skip


def _entries(
    p: Pass, classifier: bool, keep: Sequence[float], form: str
) -> list[tuple[str, str, np.ndarray, str, str]]:
    """(name, label, row-layout matrix, equation, page), in reading order, for ``form``.

    ``name`` is the key (the notes' column notation, W(l)); ``label`` and ``equation`` are
    in the form's own notation: W(l), fan_out x fan_in, in the column forms (pages 3-6),
    W[l], fan_in x fan_out, in the rows form as page 7 writes it. ``keep``: the keep
    probability of the inputs and of each hidden layer (for dropout).
    """
    rows_form = form == "rows"
    pages = _PAGES[form]

    def n(l: int | str) -> str:  # a layer index in the form's notation
        return f"[{l}]" if rows_form else f"({l})"

    def label(name: str) -> str:
        return re.sub(r"\((\d+|L)\)", r"[\1]", name) if rows_form else name

    L = len(p.Z) - 1
    out: list[tuple[str, str, np.ndarray, str, str]] = []

    def add(name: str, matrix: np.ndarray, eq_rows: str, eq_cols: str, page: str) -> None:
        out.append((name, label(name), matrix, eq_rows if rows_form else eq_cols, page))

    add("X", p.X, f"A{n(0)} = X, one example per row", "X, one example per column", pages["X"])

    def mask(l: int, of: str) -> None:  # M(l) as 0/1, and A(l) = of ⊙ M(l) / keep
        M = p.M[l]
        if M is None:
            return
        eq = f"M{n(l)}: 1 keeps, 0 drops (probability {1 - keep[l]:g}), fresh every step"
        add(f"M({l})", (M != 0).astype(np.float64), eq, eq, "- (dropout)")
        eq = f"A{n(l)} = {of} ⊙ M{n(l)} / {keep[l]:g}  (inverted dropout)"
        add(f"A({l})", p.A[l], eq, eq, "- (dropout)")

    if p.M[0] is not None:
        mask(0, "X")
    for l in range(1, L + 1):
        z = "S" if l == L else f"Z({l})"
        zn = "S" if l == L else f"Z{n(l)}"
        add(
            z, p.Z[l], f"{zn} = A{n(l - 1)} W{n(l)} + 1_n b{n(l)}",
            f"{zn} = W{n(l)} A{n(l - 1)} + b{n(l)} 1_n^T", pages["Z"],
        )  # fmt: skip
        if l < L and p.M[l] is None:
            eq = f"A{n(l)} = f(Z{n(l)})"
            add(f"A({l})", p.A[l], eq, eq, pages["A"])
        elif l < L:
            mask(l, f"f(Z{n(l)})")
    o = "P" if classifier else "O"
    add(o, p.out, "P = softmax(S), row by row" if classifier else "O = S",
        "P = softmax(S), column by column" if classifier else "O = S", pages["P"])  # fmt: skip
    eq = "one-hot labels" if classifier else "targets"
    add("Y", p.Y, eq, eq, pages["Y"])
    eq = f"delta{n(L)} = dJ/dS = ({o} - Y) / n"
    add(f"delta({L})", p.delta[L], eq, eq, pages["delta(L)"])
    for l in range(L, 0, -1):
        add(
            f"dJ/dW({l})", p.dW[l], f"dJ/dW{n(l)} = A{n(l - 1)}^T delta{n(l)}",
            f"dJ/dW{n(l)} = delta{n(l)} A{n(l - 1)}^T", pages["dJ/dW"],
        )  # fmt: skip
        add(
            f"dJ/db({l})", p.db[l][None, :], f"dJ/db{n(l)} = 1_n^T delta{n(l)}",
            f"dJ/db{n(l)} = delta{n(l)} 1_n", pages["dJ/db"],
        )  # fmt: skip
        if l > 1:
            k = l - 1
            add(
                f"dJ/dA({k})", p.dA[k], f"dJ/dA{n(k)} = delta{n(l)} W{n(l)}^T",
                f"dJ/dA{n(k)} = W{n(l)}^T delta{n(l)}", pages["dJ/dA"],
            )  # fmt: skip
            eq = f"f'(Z{n(k)})"
            add(f"f'(Z({k}))", p.fprime[k], eq, eq, pages["f'"])
            eq = f"delta{n(k)} = dJ/dA{n(k)} ⊙ f'(Z{n(k)})"
            if p.M[k] is not None:  # the same mask as the forward pass
                eq += f" ⊙ M{n(k)} / {keep[k]:g}"
            add(f"delta({k})", p.delta[k], eq, eq, pages["delta"])
    return out


def matrices(
    net: MLP,
    X: np.ndarray,
    y: np.ndarray,
    form: str,
    example: int,
    masks: Masks = None,
    drop: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Every matrix of the batch in one of `FORMS`, each with its shape and equation.

    ``rows`` is page 7 as computed; ``columns`` is pages 5-6, every matrix transposed (so
    W(l) reads fan_out x fan_in); ``example`` is Alg 3 (page 4) for example ``example`` of
    the batch, as columns: the pass on that one example, where delta(L) = p - y.
    ``masks`` (M / keep per layer, as `MLP.loss_and_grads` takes them) and ``drop`` (the
    drop probability of the inputs and of each hidden layer) show dropout's masks.
    """
    if form == "example":
        X, y = X[example : example + 1], y[example : example + 1]
        if masks is not None:
            masks = [None if M is None else M[example : example + 1] for M in masks]
    p = backward_pass(net, X, y, masks)
    keep = [1.0 - q for q in (drop or [0.0] * net.n_layers)]
    out = []
    for name, label, m, eq, page in _entries(p, net.is_classifier, keep, form):
        # A column form shows every matrix transposed: dJ/dW(l) in W(l)'s fan_out x fan_in.
        values = m if form == "rows" else m.T
        per_example = not name.startswith(("dJ/dW", "dJ/db"))  # one row per example
        axis = None if form == "example" or not per_example else (0 if form == "rows" else 1)
        out.append({
            "name": name, "label": label, "equation": eq, "page": page, "batch_axis": axis,
            "values": encode(values),
        })  # fmt: skip
    return {"form": form, "example": example, "J": p.J, "n": len(X), "matrices": out}


def chain_rule(
    net: MLP,
    optimizer: Optimizer,
    X: np.ndarray,
    y: np.ndarray,
    l: int,
    i: int,
    j: int,
    k: int,
    masks: Masks = None,
) -> dict[str, Any]:
    """The gradient of one weight W(l)_ij as the sum the notes write, checked three ways.

    dJ/dW(l)_ij = sum_k A(l-1)_ki delta(l)_kj (page 6); for a hidden layer,
    delta(l)_kj = (sum_m delta(l+1)_km W(l+1)_jm) f'(Z(l)_kj) (page 6), times
    M(l)_kj / keep under dropout, whose m-terms are given for example k. Also: the
    engine's gradient (`MLP.loss_and_grads`, with the same ``masks``), a centred finite
    difference (`backprop.gradcheck.numerical_gradient`, h = 1e-6, of the loss with those
    masks) and the change the optimiser's next step will make to the weight (a copy of it
    steps; nothing moves).
    """
    p = backward_pass(net, X, y, masks)
    L = net.n_layers
    terms = p.A[l - 1][:, i] * p.delta[l][:, j]
    key = f"W{l}"
    _, grads = net.loss_and_grads(X, y, masks=masks)
    Xc, yc = net.check_X(X), net.check_y(y, len(X))
    W = net.params[key]
    fd = numerical_gradient(
        lambda: net.loss_and_grads(Xc, yc, masks=masks, check=False)[0], W[i : i + 1, j : j + 1]
    )[0, 0]
    trial = copy.deepcopy(optimizer)  # its params are copies too: the network is untouched
    trial.step(grads)
    result: dict[str, Any] = {
        "layer": l, "i": i, "j": j, "example": k, "weight": float(W[i, j]),
        "a_prev": encode(p.A[l - 1][:, i]), "delta": encode(p.delta[l][:, j]),
        "terms": encode(terms), "sum": float(terms.sum()),
        "engine": float(grads[key][i, j]), "finite_difference": float(fd),
        "next_change": float(trial.params[key][i, j] - W[i, j]),
    }  # fmt: skip
    if l < L:
        result["delta_terms"] = encode(p.delta[l + 1][k] * net.params[f"W{l + 1}"][j])
        result["dA"] = float(p.dA[l][k, j])
        result["fprime"] = float(p.fprime[l][k, j])
        result["delta_kj"] = float(p.delta[l][k, j])
        M = p.M[l]
        result["mask"] = None if M is None else float(M[k, j])  # M(l)_kj / keep
    return result


def _grid(lo: np.ndarray, hi: np.ndarray, res: int) -> np.ndarray:
    """A res x res grid over [lo, hi] as (res * res, 2) rows: row r of the picture is
    x1 = hi[1] - r * step (top first), column c is x0 = lo[0] + c * step."""
    x0 = np.linspace(lo[0], hi[0], res)
    x1 = np.linspace(hi[1], lo[1], res)
    return np.stack(np.meshgrid(x0, x1), axis=-1).reshape(-1, 2)


def boundary(net: MLP, lo: np.ndarray, hi: np.ndarray, res: int) -> dict[str, Any]:
    """The network's output on a res x res grid over [lo, hi] (2-D inputs, `_grid`):
    probabilities for a classifier, outputs for a regressor."""
    grid = _grid(lo, hi, res)
    out = net.predict_proba(grid) if net.is_classifier else net.forward(grid)
    return {"lo": lo.tolist(), "hi": hi.tolist(), "res": res, "values": encode(out, "<f4")}


#: The graph view draws every unit: at most this many per layer.
GRAPH_MAX_UNITS = 16


def graph(
    net: MLP,
    X: np.ndarray,
    y: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    res: int,
    masks: Masks = None,
) -> dict[str, Any]:
    """The network as a graph (2-D inputs): every unit's output over the input plane, and
    what the backward pass of the batch sends through each link and unit.

    For each layer l = 0..L: ``maps`` (m_l, res, res), unit j's output over the grid of
    `_grid` (layer 0: x0 and x1; hidden layers: f(Z(l)), no dropout, as in prediction; the
    output layer: P for a classifier, O for a regressor); for l >= 1 also ``W`` (W(l)),
    ``dW`` (dJ/dW(l)) and ``delta`` (delta(l), one row per example) of the batch (X, y)
    with its dropout ``masks``; ``X`` is the batch, where each example's delta is drawn.

    Raises
    ------
    ValueError
        The inputs are not 2-D or a layer has more than `GRAPH_MAX_UNITS` units.
    """
    sizes = net.layer_sizes
    if sizes[0] != 2 or max(sizes) > GRAPH_MAX_UNITS:
        raise ValueError(
            f"the graph view needs 2-D inputs and at most {GRAPH_MAX_UNITS} units per "
            f"layer; the network is {'-'.join(map(str, sizes))}"
        )
    grid = _grid(lo, hi, res)
    _, Z, F = forward_pass(net, grid)  # the same forward pass the matrices view shows
    L = net.n_layers
    out = softmax(Z[L]) if net.is_classifier else Z[L]
    p = backward_pass(net, X, y, masks)
    layers: list[dict[str, Any]] = []
    for l in range(L + 1):
        values = grid if l == 0 else (out if l == L else F[l])
        layer = {"maps": encode(values.T.reshape(-1, res, res))}
        if l > 0:
            layer |= {
                "W": encode(net.params[f"W{l}"]),
                "dW": encode(p.dW[l]),
                "delta": encode(p.delta[l]),
            }
        layers.append(layer)
    return {
        "lo": lo.tolist(), "hi": hi.tolist(), "res": res, "X": encode(p.X), "layers": layers,
    }  # fmt: skip


def image_view(net: MLP, X: np.ndarray, y: np.ndarray, k: int, units: int = 64) -> dict[str, Any]:
    """Example k of an image batch: its pixels, class probabilities and dJ/dX, and the
    first ``units`` columns of W(1) (what each first-layer unit looks for), as rows.

    dJ/dX is the gradient of that example's own loss (the pass on it alone, Alg 3):
    W(1)^T delta(1) in the notes' column form, delta(1) W(1)^T as a row.
    """
    p = backward_pass(net, X[k : k + 1], y[k : k + 1])
    return {
        "example": k,
        "label": int(y[k]) if net.is_classifier else None,
        "x": encode(X[k]),
        "out": encode(p.out[0]),
        "dX": encode(p.dX[0]),
        "W1": encode(net.params["W1"][:, :units].T),
    }
