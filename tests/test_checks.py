"""The one set of option checks (`backprop.checks`) and the front ends that use it."""

from __future__ import annotations

import argparse
import math
import re

import numpy as np
import pytest

from backprop import checks
from backprop.checks import (
    OptionError,
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_ints,
    check_real,
    whole_number,
)


def _refused(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(OptionError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ValueError)
    return message


# ---------------------------------------------------------------- each check


def test_the_lr_rule_reads_as_one_line() -> None:
    assert _refused(check_real, "lr", -1.0, low=0, low_open=True) == (
        "lr must be a finite number > 0, got -1.0"
    )


@pytest.mark.parametrize("bad", [0, 0.0, -1e-300, math.nan, math.inf, -math.inf, True, "0.1", None])
def test_positive_real_refuses(bad: object) -> None:
    assert "lr must be a finite number > 0" in _refused(check_real, "lr", bad, low=0, low_open=True)


@pytest.mark.parametrize("good", [1e-300, 2, np.float32(0.5), np.int64(3)])
def test_positive_real_accepts_and_returns_a_python_float(good: object) -> None:
    value = check_real("lr", good, low=0, low_open=True)
    assert type(value) is float and value == float(good)  # type: ignore[arg-type]


def test_interval_bounds_open_and_closed() -> None:
    assert check_fraction("momentum", 0) == 0.0
    assert check_fraction("momentum", 0.999) == 0.999
    assert (
        _refused(check_fraction, "momentum", 1.0) == "momentum must be a number in [0, 1), got 1.0"
    )
    assert _refused(check_fraction, "momentum", -0.1).startswith(
        "momentum must be a number in [0, 1)"
    )
    kw = {"low": 0, "high": 1, "low_open": True}
    assert check_real("gamma", 1, **kw) == 1.0
    assert _refused(check_real, "gamma", 0, **kw) == "gamma must be a number in (0, 1], got 0"
    assert _refused(check_real, "x", 2.5, low=0.5, high=1.5) == (
        "x must be a number in [0.5, 1.5], got 2.5"
    )


def test_nan_is_refused_even_without_bounds_and_inf_only_when_finite() -> None:
    assert _refused(check_real, "x", math.nan) == "x must be a finite number, got nan"
    assert _refused(check_real, "x", math.nan, finite=False) == "x must be a number, got nan"
    assert check_real("x", math.inf, finite=False, low=0) == math.inf
    assert _refused(check_real, "x", math.inf, low=0) == "x must be a finite number >= 0, got inf"


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, False, "3", None, np.float64(4)])
def test_whole_number_refuses(bad: object) -> None:
    assert (
        _refused(check_int, "epochs", bad, low=1)
        == f"epochs must be a whole number >= 1, got {bad!r}"
    )


def test_whole_number_accepts_numpy_ints_and_returns_int() -> None:
    value = check_int("seed", np.int64(7), low=0)
    assert type(value) is int and value == 7
    assert check_int("n", 5, low=1, high=5) == 5
    assert _refused(check_int, "n", 6, low=1, high=5) == "n must be a whole number in [1, 5], got 6"


def test_list_of_whole_numbers() -> None:
    assert check_ints("hidden", [64, np.int32(8)], low=1) == (64, 8)
    for bad in ([], (4, 0), [4, 2.0], 5, "64", None, [True]):
        assert _refused(check_ints, "hidden", bad, low=1) == (
            f"hidden must be a list of whole numbers >= 1, got {bad!r}"
        )


def test_choice_lists_what_is_allowed() -> None:
    assert check_choice("dtype", "float32", ("float32", "float64")) == "float32"
    for bad in ("float16", 32, None, ["float32"]):
        assert _refused(check_choice, "dtype", bad, ("float32", "float64")) == (
            f"unknown dtype {bad!r}; choose one of float32, float64"
        )


def test_bool_is_only_true_or_false() -> None:
    assert check_bool("standardize", False) is False
    for bad in (0, 1, "yes", None, np.bool_(True)):
        assert _refused(check_bool, "standardize", bad) == (
            f"standardize must be true or false, got {bad!r}"
        )


# ---------------------------------------------------------------- one rule everywhere


def _lr_messages(bad: float) -> list[str]:
    """The message each front end gives for a learning rate ``bad``."""
    from backprop import MLP
    from backprop.config import TrainConfig
    from backprop.estimators import MLPRegressor
    from backprop.optim import SGD
    from backprop.schedules import Constant

    messages = []
    for make in (
        lambda: TrainConfig(lr=bad).validate(),
        lambda: SGD(MLP([2, 2]).params, lr=bad),
        lambda: Constant(bad),
        lambda: MLPRegressor(learning_rate_init=bad).fit(np.zeros((4, 2)), np.zeros(4)),
    ):
        with pytest.raises(ValueError) as info:
            make()
        messages.append(str(info.value))
    return messages


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_lr_rule_is_the_same_in_every_front_end(bad: float) -> None:
    config, sgd, schedule, estimator = _lr_messages(bad)
    assert config == sgd == schedule == f"lr must be a finite number > 0, got {bad!r}"
    assert estimator == f"learning_rate_init must be a finite number > 0, got {bad!r}"


@pytest.mark.parametrize(
    ("flag_type", "text", "requirement"),
    [
        ("positive_float", "-1", "a finite number > 0"),
        ("positive_float", "nan", "a finite number > 0"),
        ("positive_float", "1e999", "a finite number > 0"),
        ("nonnegative_float", "-0.5", "a finite number >= 0"),
        ("positive_int", "0", "a whole number >= 1"),
        ("nonnegative_int", "-1", "a whole number >= 0"),
        ("fraction", "1", "a number in [0, 1)"),
    ],
)
def test_cli_flag_types_say_what_the_library_says(
    flag_type: str, text: str, requirement: str
) -> None:
    from backprop.cli import argtypes

    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(requirement)) as info:
        getattr(argtypes, flag_type)(text)
    assert str(info.value) == f"must be {requirement}, got {text!r}"


def test_cli_flag_types_parse_and_return_plain_numbers() -> None:
    from backprop.cli import argtypes

    assert argtypes.positive_int("3") == 3 and type(argtypes.positive_int("3")) is int
    assert argtypes.positive_float("2e-3") == 2e-3
    assert argtypes.fraction("0") == 0.0
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be an integer, got '2\.5'"):
        argtypes.positive_int("2.5")
    with pytest.raises(argparse.ArgumentTypeError, match="must be a number, got 'x'"):
        argtypes.positive_float("x")


def test_there_is_one_definition_of_the_number_predicates() -> None:
    import backprop._fileutil as fileutil

    assert not hasattr(fileutil, "is_int") and not hasattr(fileutil, "is_real")
    assert checks.is_int(np.uint8(3)) and not checks.is_int(True) and not checks.is_int(3.0)
    assert checks.is_real(np.float32(3)) and not checks.is_real(np.bool_(True))


def test_whole_number_reads_ascii_digits_only() -> None:
    assert whole_number("3") == 3 and whole_number(" 12 ") == 12 and whole_number("0") == 0
    # isdigit() alone passes "²", which int() cannot read: a traceback where a one-line
    # error belongs (BACKPROP_PLOT_WORKERS, a headerless CSV's --target).
    for text in ("", " ", "-1", "+2", "1.5", "two", "\u00b2", "\u0663"):
        assert whole_number(text) is None, text
