"""The flags' value types: argparse calls them on the flag's text.

Each parses the text and hands the value to the library's own check (`backprop.checks`),
so a flag and the option it sets obey the same rule. An ArgumentTypeError becomes
argparse's usage error ("argument --lr: must be a finite number > 0, got '-1'") and exit
status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from typing import Any

from backprop.checks import OptionError, check_choice, check_fraction, check_int, check_real
from backprop.recipes import RECIPES

__all__ = [
    "RECIPE_LIST",
    "fraction",
    "nonnegative_float",
    "nonnegative_int",
    "port",
    "positive_float",
    "positive_int",
    "recipe_name",
]


def _number(text: str, kind: type[int] | type[float], check: Callable[[str, Any], Any]) -> Any:
    """Parse ``text`` as ``kind`` and return ``check(name, value)``'s result.

    Raises
    ------
    argparse.ArgumentTypeError
        If the text is not a number of that kind or the check refuses it; the message says
        what is allowed and shows the text as typed.
    """
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    try:
        return check("value", value)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(f"must be {exc.requirement}, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return int(_number(text, int, partial(check_int, low=1)))


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return int(_number(text, int, partial(check_int, low=0)))


def port(text: str) -> int:
    """argparse type: a TCP port, 0..65535 (0: the system picks a free one)."""
    return int(_number(text, int, partial(check_int, low=0, high=65535)))


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return float(_number(text, float, partial(check_real, low=0, low_open=True)))


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return float(_number(text, float, partial(check_real, low=0)))


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1) (a share held out, a momentum)."""
    return float(_number(text, float, check_fraction))


#: ``train --recipe list`` (or ``--recipe`` alone) prints the recipes instead of training.
RECIPE_LIST = "list"


def recipe_name(text: str) -> str:
    """argparse type: a recipe of `backprop.recipes.RECIPES`, or ``list``."""
    try:
        return check_choice("recipe", text, [*RECIPES, RECIPE_LIST])
    except OptionError as exc:
        raise argparse.ArgumentTypeError(f"must be {exc.requirement}, got {text!r}") from None
