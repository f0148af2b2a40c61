"""The notes' six forms: hand-worked values, shapes, mutual agreement, finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop import MLP, notes
from backprop.gradcheck import NOTES_FORMS, check_gradients, notes_problem, relative_error

D, M, C, N = 7, 5, 3, 11  # distinct, so any mix-up of m and n (the notes' typo) breaks a shape
KEYS = ("W1", "b1", "W2", "b2")


# ------------------------------------------------------------------ worked by hand
# The notes' regression net (page 1) with d = 2, m = 2, worked on paper:
#   x = [1, 2]^T, y = 3
#   W1 = [[1, -1], [0.5, 1]], b1 = [0, -1]^T
#   z = W1 x + b1 = [1 - 2 + 0, 0.5 + 2 - 1] = [-1, 1.5]
#   a = ReLU(z) = [0, 1.5]
#   W2 = [[2, -1]], b2 = 0.5
#   o = 2*0 - 1*1.5 + 0.5 = -1
#   J = 1/2 (y - o)^2 = 1/2 * 16 = 8
#   dJ/do = o - y = -4
#   dJ/dW2 = (o - y) a^T = [[0, -6]];  dJ/db2 = -4
#   dJ/da = W2^T (o - y) = [-8, 4];  dJ/dz = dJ/da * 1{z > 0} = [0, 4]
#   dJ/dW1 = dJ/dz x^T = [[0, 0], [4, 8]];  dJ/db1 = [0, 4]
HAND_X = np.array([[1.0], [2.0]])
HAND_W1 = np.array([[1.0, -1.0], [0.5, 1.0]])
HAND_B1 = np.array([[0.0], [-1.0]])
HAND_REGRESSION = {
    "J": 8.0,
    "W1": [[0.0, 0.0], [4.0, 8.0]],
    "b1": [[0.0], [4.0]],
    "W2": [[0.0, -6.0]],
    "b2": [[-4.0]],
}


def test_regression_example_by_hand() -> None:
    W2 = np.array([[2.0, -1.0]])
    b2 = np.array([[0.5]])
    J, grads = notes.regression_example(HAND_X, 3.0, HAND_W1, HAND_B1, W2, b2)
    assert J == pytest.approx(HAND_REGRESSION["J"], abs=1e-14)
    for key in KEYS:
        np.testing.assert_allclose(grads[key], HAND_REGRESSION[key], atol=1e-14)


# The notes' classification net (page 3) on the same hidden layer, c = 2:
#   a = [0, 1.5] as above;  W2 = [[0, 0], [0, (2/3) ln 3]], b2 = [0, 0]^T
#   s = W2 a + b2 = [0, ln 3];  p = softmax(s) = [1, 3] / 4 = [1/4, 3/4]
#   y = 0:  J = -log p_0 = ln 4
#   dJ/ds = p - e_y = [-3/4, 3/4]   (the notes as written would give [1/4, -1/4])
#   dJ/dW2 = dJ/ds a^T = [[0, -9/8], [0, 9/8]];  dJ/db2 = [-3/4, 3/4]
#   dJ/da = W2^T dJ/ds = [0, (2/3) ln 3 * 3/4] = [0, ln3 / 2];  dJ/dz = [0, ln3 / 2]
#   dJ/dW1 = dJ/dz x^T = [[0, 0], [ln3/2, ln3]];  dJ/db1 = [0, ln3/2]
LN3 = math.log(3.0)
HAND_W2_CLS = np.array([[0.0, 0.0], [0.0, 2.0 / 3.0 * LN3]])
HAND_B2_CLS = np.zeros((2, 1))
HAND_CLASSIFICATION = {
    "J": math.log(4.0),
    "W1": [[0.0, 0.0], [LN3 / 2, LN3]],
    "b1": [[0.0], [LN3 / 2]],
    "W2": [[0.0, -9 / 8], [0.0, 9 / 8]],
    "b2": [[-0.75], [0.75]],
}


def test_classification_example_by_hand() -> None:
    J, grads = notes.classification_example(HAND_X, 0, HAND_W1, HAND_B1, HAND_W2_CLS, HAND_B2_CLS)
    assert J == pytest.approx(HAND_CLASSIFICATION["J"], abs=1e-14)
    for key in KEYS:
        np.testing.assert_allclose(grads[key], HAND_CLASSIFICATION[key], atol=1e-14)


def test_score_gradient_by_hand_and_as_written() -> None:
    p = np.array([[0.25], [0.75]])
    np.testing.assert_allclose(notes.dJ_ds(p, 0), [[-0.75], [0.75]])
    # The notes' page 3 swaps the cases: p_k for k = y, p_k - 1 for k != y.
    np.testing.assert_allclose(notes.dJ_ds_as_written(p, 0), [[0.25], [-0.25]])


def test_hand_example_through_the_engine() -> None:
    """The engine, in row layout (W stored fan_in x fan_out), gives the paper values."""
    net = MLP([2, 2, 1], loss="squared_error", dtype=np.float64)
    net.params.update(
        W1=HAND_W1.T.copy(),
        b1=HAND_B1[:, 0].copy(),
        W2=np.array([[2.0], [-1.0]]),
        b2=np.array([0.5]),
    )
    J, grads = net.loss_and_grads(HAND_X.T, np.array([3.0]))
    assert J == pytest.approx(8.0, abs=1e-14)
    for key in KEYS:
        expected = np.asarray(HAND_REGRESSION[key])
        expected = expected.T if key.startswith("W") else expected.reshape(-1)
        np.testing.assert_allclose(grads[key], expected, atol=1e-14)


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize("form", list(NOTES_FORMS))
def test_gradient_shapes_match_parameters(form: str) -> None:
    problem = notes_problem(form.startswith("classification"), d=D, m=M, c=C, n=N)
    args = problem.args(form)
    _, grads = NOTES_FORMS[form](*args)
    c = C if form.startswith("classification") else 1
    if form.endswith("_rows"):
        expected = {"W1": (D, M), "b1": (1, M), "W2": (M, c), "b2": (1, c)}
    else:
        expected = {"W1": (M, D), "b1": (M, 1), "W2": (c, M), "b2": (c, 1)}
    assert {k: g.shape for k, g in grads.items()} == expected
    for key, param in zip(KEYS, args[2:], strict=True):
        assert grads[key].shape == param.shape


# ------------------------------------------------------------------ agreement
def _as_rows(grads: dict[str, np.ndarray], form: str) -> dict[str, np.ndarray]:
    """Gradients of any form in the engine's layout: W (fan_in, fan_out), b (fan_out,)."""
    if form.endswith("_rows"):
        return {k: (g if k.startswith("W") else g[0]) for k, g in grads.items()}
    return {k: (g.T if k.startswith("W") else g[:, 0]) for k, g in grads.items()}


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_forms_agree_with_each_other_and_the_engine(task: str, seed: int) -> None:
    problem = notes_problem(task == "classification", d=D, m=M, c=C, n=N, seed=seed)
    loss = "softmax_cross_entropy" if task == "classification" else "squared_error"
    net = MLP([D, M, C if task == "classification" else 1], loss=loss, dtype=np.float64)
    net.params = {k: v.copy() for k, v in problem.params.items()}
    J_engine, g_engine = net.loss_and_grads(problem.X, problem.y)

    J_cols, g_cols = NOTES_FORMS[f"{task}_batch"](*problem.args(f"{task}_batch"))
    J_rows, g_rows = NOTES_FORMS[f"{task}_batch_rows"](*problem.args(f"{task}_batch_rows"))
    # Alg 3 per example, averaged over the batch, is the batch gradient (page 5: J is the mean).
    per_example = [
        NOTES_FORMS[f"{task}_example"](*problem.args(f"{task}_example", example=i))
        for i in range(N)
    ]
    J_mean = float(np.mean([J for J, _ in per_example]))
    g_mean = {k: np.mean([_as_rows(g, "example")[k] for _, g in per_example], axis=0) for k in KEYS}

    for J in (J_cols, J_rows, J_mean):
        assert J == pytest.approx(J_engine, rel=1e-12)
    for other in (_as_rows(g_cols, "batch"), _as_rows(g_rows, "batch_rows"), g_mean):
        for key in KEYS:
            assert relative_error(other[key], g_engine[key]) <= 1e-10, key


@pytest.mark.parametrize("form", list(NOTES_FORMS))
def test_forms_pass_finite_differences(form: str) -> None:
    problem = notes_problem(form.startswith("classification"), d=D, m=M, c=C, n=N)
    args = problem.args(form)
    _, grads = NOTES_FORMS[form](*args)
    params = dict(zip(KEYS, args[2:], strict=True))
    errors = check_gradients(lambda: NOTES_FORMS[form](*args)[0], params, grads)
    assert max(errors.values()) <= 1e-7, errors


def test_score_gradient_as_written_fails_finite_differences() -> None:
    """Erratum 1 (docs/errata.md): the notes' dJ/ds fails the check; the fix passes."""
    problem = notes_problem(True, d=D, m=M, c=C, n=N)
    args = problem.args("classification_example")
    x, y, W1, b1, W2, b2 = args
    params = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}

    def loss() -> float:
        return notes.classification_example(*args)[0]

    _, fixed = notes.classification_example(x, y, W1, b1, W2, b2)
    _, as_written = notes.classification_example(
        x, y, W1, b1, W2, b2, score_grad=notes.dJ_ds_as_written
    )
    assert max(check_gradients(loss, params, fixed).values()) <= 1e-7
    assert min(check_gradients(loss, params, as_written).values()) > 1e-2


def test_softmax_is_stable_for_huge_scores() -> None:
    x = np.ones((3, 1))
    W1 = np.eye(3)
    b1 = np.zeros((3, 1))
    W2 = np.array([[1000.0, 0, 0], [-1000.0, 0, 0]])
    # Underflow of e^{-2000} to 0 is harmless; overflow, 0/0 or log(0) are not.
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        J, grads = notes.classification_example(x, 1, W1, b1, W2, np.zeros((2, 1)))
    assert J == pytest.approx(2000.0)  # -log p_1 = s_0 - s_1 when p_1 is tiny
    assert all(np.isfinite(g).all() for g in grads.values())


# ------------------------------------------------------------------ errata, as written
# Each erratum of docs/errata.md whose formula can be computed: the notes' version computed
# literally, failing (a shape error, a wrong shape, a failed finite-difference check), next
# to the fix passing. Items that are notation only say so in docs/errata.md.
def _columns_problem() -> tuple[np.ndarray, ...]:
    problem = notes_problem(True, d=D, m=M, c=C, n=N)
    return problem.args("classification_batch")  # X (d x n), y, W1 (m x d), b1, W2, b2


def test_erratum_4_5_ones_m_raises_unless_m_equals_n() -> None:
    """Page 5: Z = W(1) X + b(1) 1_m^T and S = W(2) A + b(2) 1_m^T need 1_n."""
    X, _, W1, b1, W2, b2 = _columns_problem()
    ones_m, ones_n = np.ones((1, W1.shape[0])), np.ones((1, X.shape[1]))
    with pytest.raises(ValueError, match="broadcast"):
        W1 @ X + b1 @ ones_m  # (m x n) + (m x m)
    Z = W1 @ X + b1 @ ones_n
    A = notes.relu(Z)
    with pytest.raises(ValueError, match="broadcast"):
        W2 @ A + b2 @ ones_m  # (c x n) + (c x m)
    assert (W2 @ A + b2 @ ones_n).shape == (C, N)
    # With m = n the typo hides: the line as written runs and gives the right Z.
    Xs, _, W1s, b1s, W2s, b2s = notes_problem(True, d=D, m=N, c=C, n=N).args("classification_batch")
    m = W1s.shape[0]  # the hidden width, which the notes use as the length of the ones
    Z_as_written = W1s @ Xs + b1s @ np.ones((1, m))
    np.testing.assert_array_equal(Z_as_written, notes._forward_batch(Xs, W1s, b1s, W2s, b2s)[0])


def test_erratum_8_13_bias_gradients_with_ones_m_raise() -> None:
    """Page 6: dJ/db = dJ/dS 1_m (c x n)(m x 1); page 7: 1_m dJ/dS. Both need 1_n."""
    delta2 = np.full((C, N), 0.1)  # any dJ/dS, c x n
    with pytest.raises(ValueError, match="mismatch"):
        delta2 @ np.ones((M, 1))
    assert (delta2 @ np.ones((N, 1))).shape == (C, 1)
    with pytest.raises(ValueError, match="mismatch"):
        np.ones((1, M)) @ delta2.T  # page 7: 1_m (row) times dJ/dS (n x c)
    assert (np.ones((1, N)) @ delta2.T).shape == (1, C)


def test_erratum_9_bias_gradient_delta_has_the_wrong_shape() -> None:
    """Page 6's Alg 3 copies dJ/db = delta from page 4: for a batch delta is c x n."""
    X, y, W1, b1, W2, b2 = _columns_problem()
    _, grads = notes.classification_batch(X, y, W1, b1, W2, b2)
    Z = W1 @ X + b1
    P = np.exp(notes._log_softmax_columns(W2 @ notes.relu(Z) + b2))
    delta2 = P.copy()
    delta2[y, np.arange(N)] -= 1.0
    delta2 /= N  # dJ/dS, c x n
    assert delta2.shape == (C, N) != b2.shape  # as written: a c x n "bias gradient"
    # A step b - lr * delta would not fail: it broadcasts b into c x n, silently.
    assert (b2 - 0.1 * delta2).shape == (C, N)
    np.testing.assert_allclose(delta2 @ np.ones((N, 1)), grads["b2"], rtol=1e-12)  # the fix


def test_erratum_1_as_written_score_gradient_sums_to_2_minus_c() -> None:
    """Page 3: dJ/ds must sum to 0 over k (a constant added to every s leaves p unchanged)."""
    rng = np.random.default_rng(0)
    for c in (2, 3, 7):
        s = rng.normal(size=(c, 1))
        p = np.exp(s) / np.exp(s).sum()
        assert notes.dJ_ds(p, 1).sum() == pytest.approx(0.0, abs=1e-12)
        assert notes.dJ_ds_as_written(p, 1).sum() == pytest.approx(2 - c, abs=1e-12)


def test_erratum_1_two_classes_as_written_points_uphill() -> None:
    """Page 3, c = 2: both gradients sum to 0, so the sum test cannot see the typo; the
    as-written (p_y, p_other - 1) is -(p_y / p_other) times the right (p_y - 1, p_other), and
    a small step along minus it raises the loss instead of lowering it."""
    s = np.array([[0.3], [-0.4]])
    for y in (0, 1):
        p = np.exp(s) / np.exp(s).sum()
        fixed, as_written = notes.dJ_ds(p, y), notes.dJ_ds_as_written(p, y)
        assert as_written.sum() == pytest.approx(0.0, abs=1e-12)
        p_y, p_other = p[y, 0], p[1 - y, 0]
        np.testing.assert_allclose(as_written, -(p_y / p_other) * fixed, rtol=1e-12)

        def loss(scores: np.ndarray, y: int = y) -> float:
            return -float(scores[y, 0] - np.log(np.exp(scores).sum()))

        assert loss(s - 1e-3 * fixed) < loss(s) < loss(s - 1e-3 * as_written)


def test_erratum_10_page_5_dJ_dS_is_the_row_layout_and_confirms_page_3() -> None:
    """Page 5's dJ/dS_ij, literally: i an example, j a class. It has the cases the right
    way round (p_j - 1 when j = y(i)), so it is the row layout of page 7 (n x c), not the
    c x n S of page 5; and it confirms the page-3 fix independently."""
    problem = notes_problem(True, d=D, m=M, c=C, n=N)
    X, y, W1, b1, W2, b2 = problem.args("classification_batch_rows")
    Z = X @ W1 + b1
    S = notes.relu(Z) @ W2 + b2  # n x c
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    literal = np.array(
        [[(P[i, j] - 1) / N if j == y[i] else P[i, j] / N for j in range(C)] for i in range(N)]
    )
    assert literal.shape == (N, C) != (C, N)  # not the shape of page 5's S (c x n)

    def loss() -> float:
        return notes.classification_batch_rows(X, y, W1, b1, W2, b2)[0]

    # dJ/dW[2] = A^T dJ/dS with the literal page-5 entries passes finite differences ...
    numeric = check_gradients(loss, {"W2": W2}, {"W2": notes.relu(Z).T @ literal})
    assert numeric["W2"] <= 1e-7
    # ... and page 3's cases as written (p_k for k = y) put into the same entries fail.
    swapped = np.array(
        [[P[i, j] / N if j == y[i] else (P[i, j] - 1) / N for j in range(C)] for i in range(N)]
    )
    assert check_gradients(loss, {"W2": W2}, {"W2": notes.relu(Z).T @ swapped})["W2"] > 1e-2


def test_erratum_15_W_i_squared_would_change_page_2s_gradient() -> None:
    """Page 2 writes o = sum_i W_i^2 a_i + b(2) once. Read as a square, dJ/dW_i would be
    (o - y) 2 W_i a_i, not page 2's (o - y) a_i: finite differences tell the two apart."""
    W2 = np.array([[2.0, -1.0]])
    a = notes.relu(HAND_W1 @ HAND_X + HAND_B1)  # (0, 1.5)
    y, b2 = 3.0, 0.5

    def J_superscript() -> float:
        return 0.5 * float((y - (W2 @ a)[0, 0] - b2) ** 2)

    def J_square() -> float:
        return 0.5 * float((y - ((W2**2) @ a)[0, 0] - b2) ** 2)

    page_2 = {"W2": ((W2 @ a)[0, 0] + b2 - y) * a.T}  # (o - y) a^T = (0, -6)
    np.testing.assert_allclose(page_2["W2"], HAND_REGRESSION["W2"])
    assert check_gradients(J_superscript, {"W2": W2}, page_2)["W2"] <= 1e-7
    o_square = ((W2**2) @ a)[0, 0] + b2
    assert o_square == pytest.approx(2.0)  # not page 2's o = -1
    assert check_gradients(J_square, {"W2": W2}, page_2)["W2"] > 1e-2


# The notes' shape lines on pages 5-7 (and their Alg 3), as written and corrected, for
# quantities the code computes: each as-written shape differs from the computed one when
# d, m, c, n are distinct (erratum number, the notes' shape, the right shape).
SHAPE_LINES: dict[str, tuple[int, str, str]] = {
    "S (page 5, and page 6's Alg 3)": (5, "c x m", "c x n"),
    "A (page 6's Alg 3)": (6, "m x m", "m x n"),
    "dJ/dZ (page 6)": (7, "m x m", "m x n"),
    "dJ/dA (page 6)": (7, "m x m", "m x n"),
    "X^T (page 6, dJ/dW(1) line)": (7, "m x d", "n x d"),
    "A^T (page 6, dJ/dW(2) line)": (7, "m x m", "n x m"),
    "X (page 6)": (11, "m x d", "n x d"),
    "Z (page 6)": (20, "m x m", "n x m"),
    "S (page 7)": (12, "m x c", "n x c"),
    "dJ/dA (page 7)": (12, "m x m", "n x m"),
}


def _shape(expr: str) -> tuple[int, int]:
    size = {"d": D, "m": M, "c": C, "n": N}
    rows, cols = expr.split(" x ")
    return size[rows], size[cols]


def test_errata_shape_lines_as_written_differ_from_the_computed_shapes() -> None:
    """Every shape is the library's: the notes' forward passes (Z, A, S in both layouts)
    and gradients; a derivative by a matrix has that matrix's shape (dJ/dZ is shaped like Z).
    The corrected shape lines compose to the library's gradient shapes, the as-written ones
    name shapes the library never computes."""
    problem = notes_problem(True, d=D, m=M, c=C, n=N)
    cols, rows = problem.args("classification_batch"), problem.args("classification_batch_rows")
    Xc, Xr = cols[0], rows[0]
    Z, A, S = notes._forward_batch(Xc, *cols[2:])
    Zr, Ar, Sr = notes._forward_rows(Xr, *rows[2:])
    _, grads_cols = notes.classification_batch(*cols)
    _, grads_rows = notes.classification_batch_rows(*rows)
    computed = {
        "S (page 5, and page 6's Alg 3)": S,
        "A (page 6's Alg 3)": A,
        "dJ/dZ (page 6)": Z,
        "dJ/dA (page 6)": A,
        "X^T (page 6, dJ/dW(1) line)": Xc.T,
        "A^T (page 6, dJ/dW(2) line)": A.T,
        "X (page 6)": Xr,
        "Z (page 6)": Zr,
        "S (page 7)": Sr,
        "dJ/dA (page 7)": Ar,
    }
    assert computed.keys() == SHAPE_LINES.keys()
    for name, (_, as_written, right) in SHAPE_LINES.items():
        assert computed[name].shape == _shape(right), name
        assert computed[name].shape != _shape(as_written), name
    # The corrected lines' products (left inner = right inner) give the library's gradients:
    # dJ/dW(1) = dJ/dZ X^T, dJ/dW(2) = dJ/dS A^T (page 6); X^T dJ/dZ, A^T dJ/dS (page 7).
    products = [
        (Z, Xc.T, grads_cols["W1"]),
        (S, A.T, grads_cols["W2"]),
        (Xr.T, Zr, grads_rows["W1"]),
        (Ar.T, Sr, grads_rows["W2"]),
    ]
    for left, right, grad in products:
        assert left.shape[1] == right.shape[0]
        assert (left.shape[0], right.shape[1]) == grad.shape
