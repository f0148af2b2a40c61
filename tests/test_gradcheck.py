"""The gradient checker itself: it must accept right gradients and reject wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from backprop.gradcheck import (
    CheckResult,
    check_gradients,
    format_table,
    gradcheck_table,
    numerical_gradient,
    relative_error,
)


def test_relative_error_definition() -> None:
    # max|a - b| = 0.5, max(|a| + |b|) = 4 + 3.5 = 7.5
    assert relative_error(np.array([1.0, 4.0]), np.array([1.0, 3.5])) == pytest.approx(0.5 / 7.5)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        relative_error(np.zeros(2), np.zeros(3))


def test_numerical_gradient_of_a_known_function_on_a_transposed_view() -> None:
    base = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    x = base.T  # a non-contiguous view: perturbations must reach `base`

    def f() -> float:
        return float(np.sum(base**3))  # d/dx x^3 = 3 x^2

    np.testing.assert_allclose(numerical_gradient(f, x), 3 * x**2, rtol=1e-8)
    np.testing.assert_array_equal(base, [[1, 2, 3], [4, 5, 6]])  # restored


def test_check_gradients_rejects_a_wrong_gradient() -> None:
    w = np.array([0.5, -1.5])

    def loss() -> float:
        return float(np.sum(w**2))

    assert check_gradients(loss, {"w": w}, {"w": 2 * w})["w"] <= 1e-9
    assert check_gradients(loss, {"w": w}, {"w": -2 * w})["w"] > 0.5


def test_table_passes_and_shows_the_erratum_failing() -> None:
    rows = gradcheck_table(engine=False)
    assert all(r.ok(1e-7) for r in rows)
    errata = [r for r in rows if r.expect_fail]
    assert len(errata) == 4 and all(r.error > 1e-2 for r in errata)
    text = format_table(rows)
    assert "fails, as expected (erratum)" in text and "FAIL\n" not in text


def test_verdicts() -> None:
    assert CheckResult("x", "W1", 1e-9).ok(1e-7)
    assert not CheckResult("x", "W1", 1e-3).ok(1e-7)
    assert CheckResult("x", "W1", 1e-3, expect_fail=True).ok(1e-7)
    assert "UNEXPECTED PASS" in format_table([CheckResult("x", "W1", 0.0, expect_fail=True)])


def test_cli_gradcheck_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    from backprop.cli import main

    assert main(["gradcheck", "--notes-only"]) == 0
    assert "checks as expected" in capsys.readouterr().out
    # A threshold no finite difference can meet makes the good rows fail: exit 1.
    assert main(["gradcheck", "--notes-only", "--threshold", "1e-30"]) == 1
