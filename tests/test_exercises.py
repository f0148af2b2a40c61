"""The exercises' checker (issue 26): the reference answers pass, each wrong answer a
student is likely to write fails, on the right parameters, with the hint naming its mistake."""

from __future__ import annotations

import numpy as np
import pytest

from backprop import exercises, notes


def _softmax_columns(S: np.ndarray) -> np.ndarray:
    E = np.exp(S - S.max(axis=0))
    return E / E.sum(axis=0)


def _student(form: str, mistake: str = ""):
    """A student's backward pass for ``form``, right or with one ``mistake``."""

    def backward(X, y, W1, b1, W2, b2):
        rows = form == "rows"
        if rows:  # work in columns, hand back the rows form's transposes
            X, W1, b1, W2, b2 = X.T, W1.T, b1.T, W2.T, b2.T
        y = np.atleast_1d(y)
        n = X.shape[1]
        Z = W1 @ X + b1
        A = notes.relu(Z)
        P = _softmax_columns(W2 @ A + b2)
        Y = np.eye(len(P))[:, y]
        delta2 = {
            "sign": Y - P,
            "swapped cases": P + Y - 1,  # page 3 as written: p_y at y, p_k - 1 elsewhere
        }.get(mistake, P - Y)
        if mistake != "no 1/n":
            delta2 = delta2 / n
        mask = 1.0 if mistake == "no ReLU'" else notes.relu_prime(Z)
        delta1 = (W2.T @ delta2) * mask
        grads = {"W1": delta1 @ X.T, "b1": delta1.sum(1, keepdims=True)}
        grads |= {"W2": delta2 @ A.T, "b2": delta2.sum(1, keepdims=True)}
        if mistake == "bias not summed":
            grads |= {"b1": delta1, "b2": delta2}
        if rows:
            grads = {k: g.T for k, g in grads.items()}
        if mistake == "transposed":
            grads["W1"] = grads["W1"].T
        return grads

    return backward


@pytest.mark.parametrize("form", sorted(exercises.EXERCISES))
def test_reference_answers_and_a_right_student_pass(form: str) -> None:
    for backward in (exercises.ANSWERS[form], _student(form)):
        report = exercises.check(form, backward)
        assert report.passed, report
        assert all(r.fd_error < 1e-7 and r.engine_error < 1e-7 for r in report.results)
    assert "pass" in str(report) and "all four right" in str(report)


WRONG = [
    # (form, mistake, the parameters that must fail, words of their hint)
    ("example", "transposed", ["W1"], "transposed product"),
    ("columns", "transposed", ["W1"], "transposed product"),
    ("rows", "transposed", ["W1"], "transposed product"),
    ("columns", "bias not summed", ["b1", "b2"], "missing sum over the batch"),
    ("rows", "bias not summed", ["b1", "b2"], "missing sum over the batch"),
    ("example", "sign", ["W1", "b1", "W2", "b2"], "wrong softmax sign"),
    ("example", "swapped cases", ["W1", "b1", "W2", "b2"], "wrong softmax sign"),
    ("columns", "swapped cases", ["W1", "b1", "W2", "b2"], "wrong softmax sign"),
    ("rows", "sign", ["W1", "b1", "W2", "b2"], "wrong softmax sign"),
    ("columns", "no 1/n", ["W1", "b1", "W2", "b2"], "missing 1/n"),
    ("rows", "no ReLU'", ["W1", "b1"], "delta(1) is not"),
]


@pytest.mark.parametrize(("form", "mistake", "failing", "words"), WRONG)
def test_each_wrong_answer_fails_with_its_hint(
    form: str, mistake: str, failing: list[str], words: str
) -> None:
    report = exercises.check(form, _student(form, mistake))
    assert not report.passed
    assert [r.name for r in report.results if not r.passed] == failing, report
    for name in failing:
        assert words in report.hint(name), (name, report.hint(name))
    assert "FAIL" in str(report) and words in str(report)


def test_unwritten_stub_and_unknown_form() -> None:
    report = exercises.check("columns", lambda *args: {"W1": None, "b1": None})
    assert [r.hint for r in report.results] == ["not written yet"] * 4
    report = exercises.check("rows", lambda *args: (1, 2, 3, 4))
    assert report.hint("W1") == "return a dict with keys W1, b1, W2, b2, not tuple"
    report = exercises.check("rows", lambda *args: {**exercises.ANSWERS["rows"](*args), "b2": "x"})
    assert report.hint("b2") == "b2 is not an array of numbers (str)" and report.hint("W1") == ""
    with pytest.raises(ValueError, match="unknown exercise 'diagonal'"):
        exercises.check("diagonal", exercises.ANSWERS["rows"])


def test_answer_prints_the_reference_source() -> None:
    text = exercises.answer("rows")
    assert "def _answer_rows" in text and "ones_n_T @ delta1" in text


# ---------------------------------------------- the written exercises (section 12)
def test_softmax_sum_answer_is_what_it_says() -> None:
    """Exercise 2: fixed sums to 0, as written to 2 - c; for c = 2 the as-written dJ/ds is
    -(p_y / p_other) times the fixed one (p = (0.2, 0.8), y = 0: -0.25)."""
    out = exercises.QUESTIONS["softmax-sum"]()
    for c, (fixed, as_written) in out["sums (fixed, as written) by c"].items():
        assert fixed == pytest.approx(0, abs=1e-12) and as_written == pytest.approx(2 - c)
    np.testing.assert_allclose(out["c = 2: as written / fixed"], [-0.25, -0.25], rtol=1e-12)


def test_ones_m_answer_runs_only_with_m_equal_n() -> None:
    """Exercise 3: with m = n the as-written line runs and gives the right Z."""
    assert exercises.QUESTIONS["ones-m"]() == {"Z as written": (11, 11), "equals the right Z": True}


def test_rows_and_tanh_answers() -> None:
    """Exercise 4: every row-form gradient is the column form's transpose; exercise 5:
    tanh's gradients pass the finite-difference check."""
    assert exercises.QUESTIONS["rows-from-columns"]() == dict.fromkeys(exercises.KEYS, True)
    errors = exercises.QUESTIONS["tanh"]()
    assert set(errors) == set(exercises.KEYS) and max(errors.values()) < 1e-7, errors


def test_answer_prints_a_written_exercises_reasoning() -> None:
    text = exercises.answer("softmax-sum")
    assert "def _answer_softmax_sum" in text and "= 2 - c" in text
    with pytest.raises(ValueError, match="unknown exercise 'sums'"):
        exercises.answer("sums")
